"""How far a run's figures can be trusted: a level and the reasons in words for geometry, segmentation and coverage."""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("good", "check", "do not use")  # in order of worsening

SFM_REGISTERED_GOOD = 0.9  # share of keyframes structure from motion placed
SFM_REGISTERED_USABLE = 0.5
REPROJECTION_GOOD_PX = 1.5
TAPE_STRAIGHT_GOOD_PERCENT = 2.0  # RMS of the tape's points off their fitted line, % of its span
TAPE_STRAIGHT_USABLE_PERCENT = 5.0
TAPE_MIN_POINTS = 50
GROUPED_ACCURACY_GOOD = 0.8  # live coral / sand / other hard bottom at real expert points
GROUPED_ACCURACY_USABLE = 0.6
LOW_CONFIDENCE = 0.5  # a map label that won fewer than half its votes
LOW_CONFIDENCE_SHARE_CHECK = 0.3
LOW_CONFIDENCE_SHARE_BAD = 0.6
MAPPED_FRAMES_GOOD = 0.9
MAPPED_FRAMES_USABLE = 0.5


@dataclass(frozen=True)
class Verdict:
    """One part's level (a LEVELS entry) and why, one sentence per finding."""

    level: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"level": self.level, "reasons": list(self.reasons)}


def worst(levels) -> str:
    return max(levels, key=LEVELS.index, default=LEVELS[0])


def _verdict(findings: list[tuple[str, str]]) -> Verdict:
    return Verdict(worst(level for level, _ in findings), tuple(reason for _, reason in findings))


def geometry_verdict(mapping: dict, tape: dict | None, scale: dict | None, guessed_camera: bool = False) -> Verdict:
    """From summary.json's `mapping`, `tape` and `scale` records; `guessed_camera`: no camera profile was used."""
    method = mapping.get("method", "")
    findings = []
    calibrated = mapping.get("self_calibration")
    if guessed_camera and calibrated:
        findings.append(("good", f"no camera profile: structure from motion measured the focal length "
                                 f"({calibrated['hfov_deg']:.1f} degrees horizontal field of view)"))
    elif guessed_camera:
        findings.append(("check", "no camera profile and nothing measured the focal length: lengths and areas rest "
                                  "on a generic field of view (give --camera NAME)"))
    if method.startswith("true poses"):
        findings.append(("good", "camera path: the synthetic transect's true poses"))
    elif method == "sfm":
        placed = mapping.get("registered_keyframes", 0) / max(mapping.get("keyframes", 1), 1)
        error = mapping.get("reprojection_error_px", float("inf"))
        level = ("good" if placed >= SFM_REGISTERED_GOOD and error <= REPROJECTION_GOOD_PX
                 else "check" if placed >= SFM_REGISTERED_USABLE else "do not use")
        findings.append((level, f"structure from motion placed {100 * placed:.0f} % of the keyframes "
                                f"(reprojection error {error:.2f} px); the pose network bridged the frames between"))
    else:
        why = ("structure from motion failed on this video (see warnings)" if "failed" in method
               else "--mapping learned was asked for; the default --mapping auto gives an SfM path")
        findings.append(("check", f"camera path from the pose network alone ({why}), trained on synthetic reefs: it "
                                  "bends maps of real footage; measure lengths and areas only on an SfM path"))
    if tape and tape.get("points", 0) >= TAPE_MIN_POINTS and tape.get("line_rms_percent_of_span") is not None:
        rms = tape["line_rms_percent_of_span"]
        level = ("good" if rms <= TAPE_STRAIGHT_GOOD_PERCENT else "check" if rms <= TAPE_STRAIGHT_USABLE_PERCENT
                 else "do not use")
        findings.append((level, f"the transect tape lies within {rms:.1f} % of its span of a straight line in the map"
                                + ("" if level == "good" else ": the map is bent")))
    if scale is None and method.startswith("true poses"):
        findings.append(("good", "metric scale: the synthetic transect's own"))
    elif scale is None:
        findings.append(("check", "no metric scale: areas and lengths are in map units (give --tape-length-m or "
                                  "--altitude-m); cover percentages do not depend on it"))
    else:
        findings.append(("good", f"metric scale from {scale.get('source')}, uncertainty "
                                 f"{scale.get('uncertainty_percent', float('nan')):.1f} %"))
    return _verdict(findings)


def real_imagery_figures(card: dict) -> dict | None:
    """The card's scores at real expert points (validation photographs), when it was tested on any."""
    return (card.get("metrics") or {}).get("validation_points")


def segmentation_verdict(card: dict | None, confidence) -> Verdict:
    """From the segmentation weights' card (None: true labels) and the vote confidence of the sampled map points."""
    if card is None:
        return Verdict("good", ("labels: the synthetic transect's true classes",))
    findings = []
    real = real_imagery_figures(card)
    if real is None:
        findings.append(("do not use", "the segmentation network was never scored on real reef imagery (trained on "
                                       f"{(card.get('training') or {}).get('kind', 'unknown data')}): on real footage "
                                       "its cover figures are not data"))
    else:
        accuracy = real["grouped_point_accuracy"]
        level = ("good" if accuracy >= GROUPED_ACCURACY_GOOD else "check" if accuracy >= GROUPED_ACCURACY_USABLE
                 else "do not use")
        findings.append((level, f"on real validation photographs the network gets {100 * accuracy:.0f} % of expert "
                                "points right as live coral / sand / other hard bottom "
                                f"({100 * real['point_accuracy']:.0f} % by class)"))
    if len(confidence):
        low = float((confidence < LOW_CONFIDENCE).mean())
        level = "good" if low < LOW_CONFIDENCE_SHARE_CHECK else "check" if low < LOW_CONFIDENCE_SHARE_BAD else "do not use"
        findings.append((level, f"{100 * low:.0f} % of the sampled map points have labels that won under half of "
                                "their votes"))
    return _verdict(findings)


def coverage_verdict(frames_read: int, frames_mapped: int, segments_total: int, empty_segments: int) -> Verdict:
    """From how many frames went into the map and how many transect segments hold no mapped seabed."""
    share = frames_mapped / max(frames_read, 1)
    level = "good" if share >= MAPPED_FRAMES_GOOD else "check" if share >= MAPPED_FRAMES_USABLE else "do not use"
    findings = [(level, f"{frames_mapped} of {frames_read} frames mapped ({100 * share:.0f} %)")]
    if empty_segments:
        findings.append(("check", f"{empty_segments} of {segments_total} transect segments hold no mapped seabed: "
                                  "their cover is missing"))
    return _verdict(findings)


def trust_record(parts: dict[str, Verdict]) -> dict:
    """summary.json's `trust`: the worst part's level overall, and each part's level and reasons."""
    overall = worst(v.level for v in parts.values())
    return {"overall": overall, "levels": list(LEVELS), "parts": {name: v.to_dict() for name, v in parts.items()}}


def trust_lines(trust: dict) -> list[str]:
    """The verdict in a few lines for the terminal."""
    lines = [f"trust: {trust['overall'].upper()}"]
    for name, part in trust["parts"].items():
        lines.append(f"  {name}: {part['level']}")
        lines.extend(f"    - {reason}" for reason in part["reasons"])
    return lines
