"""Imports Open3D, supplying the libusb it links against from the libusb-package wheel when the system lacks it."""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def open3d():
    """The `open3d` module.

    Open3D's Linux wheels link libusb-1.0 (for RealSense cameras) although reefmap never uses it;
    machines without Debian's libusb-1.0-0 fail the import. Loading the copy shipped in the
    `libusb-package` wheel first satisfies that link without root or apt.
    """
    try:
        import open3d as o3d
    except ImportError as exc:
        if "libusb" not in str(exc):
            raise
        import libusb_package

        ctypes.CDLL(str(libusb_package.get_library_path()), mode=ctypes.RTLD_GLOBAL)
        import open3d as o3d
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d
