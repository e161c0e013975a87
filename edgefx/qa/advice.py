"""Facts about what the photos show that a person can change (size, pose, sharpness, light, cut, other faces), and
the advice they add up to; every number comes from the result and its written-down limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from edgefx.faces.quality import LIMITS
from edgefx.qa.facts import Fact, fact, photo


def _limits(result: Mapping[str, Any]) -> dict[str, float]:
    return dict(result.get("quality_limits") or asdict(LIMITS))


def _deg(value: float) -> str:
    return f"{abs(float(value)):.0f} degrees"


def _quality_facts(image: str, q: Mapping[str, Any], limits: Mapping[str, float]) -> list[Fact]:
    where = photo(image)
    yaw, roll = _deg(q["yaw_deg"]), _deg(q["roll_deg"])
    pose = f"turned {yaw} sideways and tilted {roll}"
    sharp = f"{float(q['sharpness']):.2f}"
    judged = "blurred" if "blurred" in q["issues"] else "sharp enough"
    light = f"brightness {float(q['brightness']):.0f} and contrast {float(q['contrast']):.0f}"
    light_issue = next((i for i in q["issues"] if i in ("dark", "bright", "low_contrast")), None)
    light_word = {"dark": "too dark", "bright": "too bright", "low_contrast": "too flat"}.get(light_issue or "", "well lit")
    cut = "cut by the photo's edge" if q["cut"] else "fully inside the photo"
    return [
        fact(f"pose:{image}", f"In {where}, the head is {pose} (at most {limits['max_yaw_deg']:.0f} degrees turned "
                              f"and {limits['max_roll_deg']:.0f} tilted are within the limits).", pose),
        fact(f"sharpness:{image}", f"In {where}, the face is {judged}: its sharpness is {sharp} "
                                   f"(below {limits['min_sharpness']:.2f} counts as blurred).", sharp),
        fact(f"lighting:{image}", f"In {where}, the face is {light_word}: {light} (limits: brightness "
                                  f"{limits['min_brightness']:.0f} to {limits['max_brightness']:.0f}, contrast at "
                                  f"least {limits['min_contrast']:.0f}).", light),
        fact(f"cut:{image}", f"In {where}, the face is {cut}.", cut),
    ]


def _remedy(issue: str, q: Mapping[str, Any], limits: Mapping[str, float]) -> str:
    """What a person can do about one issue, with the measured value and its limit."""
    remedies = {
        "several_faces": f"be alone in the picture ({q['other_faces']} other faces were found)",
        "cut": "stand in the middle of the picture (the face is cut by the photo's edge)",
        "small": f"come closer (the face is {float(q['size_px']):.0f} pixels wide; at least "
                 f"{limits['min_size_px']:.0f} are needed)",
        "turned": f"face the camera (the head is turned {_deg(q['yaw_deg'])}; at most "
                  f"{limits['max_yaw_deg']:.0f})",
        "tilted": f"hold the head upright (it is tilted {_deg(q['roll_deg'])}; at most {limits['max_roll_deg']:.0f})",
        "dark": f"find more light (brightness {float(q['brightness']):.0f}; at least "
                f"{limits['min_brightness']:.0f})",
        "bright": f"step out of direct light (brightness {float(q['brightness']):.0f}; at most "
                  f"{limits['max_brightness']:.0f})",
        "low_contrast": f"avoid flat or hazy light (contrast {float(q['contrast']):.0f}; at least "
                        f"{limits['min_contrast']:.0f})",
        "blurred": f"hold still and keep the lens clean (sharpness {float(q['sharpness']):.2f}; at least "
                   f"{limits['min_sharpness']:.2f})",
    }
    return remedies[issue]


def _advice(result: Mapping[str, Any], qualities: dict[str, Mapping[str, Any]], limits: Mapping[str, float]) -> Fact:
    if result.get("match"):
        text = "Nothing needs to change: the two photos were judged to show the same person."
        return fact("advice", text, "Nothing needs to change")
    parts = []
    for image in ("b", "a"):  # the live photo first: that is the one a person at the kiosk can retake
        q = qualities.get(image)
        if q and q["issues"]:
            parts.append(f"in {photo(image)}, " + "; ".join(_remedy(i, q, limits) for i in q["issues"]))
    if not parts:
        text = ("Nothing measured in the photos explains the rejection: the faces are large, sharp, well lit, "
                "facing the camera and fully in the picture, so the two photos may simply show different people.")
        return fact("advice", text, "Nothing measured in the photos explains the rejection")
    advice = "; ".join(parts)
    return fact("advice", f"To be recognised, retake the photo and {advice}.", advice)


def quality_facts(result: Mapping[str, Any]) -> list[Fact]:
    """Pose, sharpness, light and cut per photo, then the advice; nothing when the result has no quality."""
    qualities = {str(f.get("image")): f["quality"] for f in result.get("faces") or [] if f.get("quality")}
    if not qualities:
        return []
    limits = _limits(result)
    facts = [f for image, q in sorted(qualities.items()) for f in _quality_facts(image, q, limits)]
    if result.get("match") is not None:
        facts.append(_advice(result, qualities, limits))
    return facts
