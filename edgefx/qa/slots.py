"""What a question names besides its intent: which photo, method, region, pipeline step and rank; and the fact keys
an intent plus those slots point at. Keyword rules: they are small, exact and the same on every CPU."""

from __future__ import annotations

import re

PHOTO_INTENTS = {"face_size", "face_score", "other_faces", "pose", "sharpness", "lighting", "cut",
                 "top", "second", "least", "share", "agreement_top", "agreement_tau"}
METHODS = ["single_removal", "greedy_removal", "single_aggregation", "greedy_aggregation", "average"]
REGIONS = ["forehead", "left_eyebrow", "right_eyebrow", "left_eye", "right_eye", "nose", "left_cheek",
           "right_cheek", "mouth", "chin"]
_NOUN = r"(?:photo|photograph|image|picture|pic|pict|img|imag|shot|foto|snap|snapshot|frame|capture|one|face|pics|photos|images)"
_A_PAT = [
    rf"\b{_NOUN}\s*(?:#|no\.?|number)?\s*(?:a|1|one)\b(?!\s*(?:of|more))",
    rf"\b(?:first|1st|left|lefthand|left-hand|leftmost|reference|ref|id|passport|enrol+ed|registered|stored|"
    rf"original|document|badge|licen[cs]e|old|older|earlier|saved|database|file)\s*(?:-\s*)?{_NOUN}",
    r"\bon the left\b", r"\b(?:the )?left one\b", r"\bid\b", r"\bpassport\b", r"\breference\b", r"\bdocument\b",
    r"\b(?:in|for|of) the first\b(?!\s+(?:place|rank|position))", r"\bpic1\b|\bimg1\b|\bphoto1\b|\bimage1\b",
    r"\benrol+ment\b",
]
_B_PAT = [
    rf"\b{_NOUN}\s*(?:#|no\.?|number)?\s*(?:b|2|two)\b",
    rf"\b(?:second|2nd|right|righthand|right-hand|rightmost|live|camera|webcam|new|newer|current|today'?s|latest|"
    rf"kiosk|captured|probe|just taken|recent|fresh)\s*(?:-\s*)?{_NOUN}",
    r"\bon the right\b", r"\b(?:the )?right one\b", r"\bselfie\b", r"\blive\b", r"\bcamera\b", r"\bwebcam\b",
    r"\bmy (?:photo|picture|pic|image|shot|snapshot|selfie|foto)\b", r"\bjust took\b", r"\byou took\b",
    r"\b(?:in|for|of) the second\b(?!\s+(?:place|most|rank|position|highest|biggest|best))",
    r"\bpic2\b|\bimg2\b|\bphoto2\b|\bimage2\b",
]
_BOTH_PAT = [r"\bboth (?:photos|pictures|images|pics|faces|shots)\b", r"\beach (?:photo|picture|image|pic)\b",
             r"\b(?:the )?two (?:photos|pictures|images|pics)\b"]
_REGION_SIDE = re.compile(r"\b(left|right)(?:\s+(?:and|&|or|/)\s+(left|right))?[\s-]*"
                          r"(eye[\s-]?brows?|brows?|eyes?|cheeks?|cheekbones?)\b")

_METHOD_PAT = {
    "single_removal": r"(?<!')\bs\s?-(?=$|[\s?.,!)/:;])|\bs\s?minus\b|\bsingle[\s-]*(?:remo\w*|rem\w*|occlu\w*|delet\w*|hid\w*)",
    "greedy_removal": r"\bg\s?-(?=$|[\s?.,!)/:;])|\bg\s?minus\b|\bgreedy[\s-]*(?:remo\w*|rem\w*|occlu\w*|delet\w*|hid\w*)",
    "single_aggregation": r"(?<!')\bs\s?\+|\bs\s?plus\b|\bsingle[\s-]*(?:agg?r?e?g\w*|add\w*|reveal\w*|insert\w*)",
    "greedy_aggregation": r"\bg\s?\+|\bg\s?plus\b|\bgreedy[\s-]*(?:agg?r?e?g\w*|add\w*|reveal\w*|insert\w*)",
    "average": r"\bavg\b|\baverage\w*|\bmean (?:method|map|of)\b|\bcombined\b|\boverall\b",
    "region_removal": r"\bregion[\s-]*(?:remo\w*|occlu\w*|hid\w*)|\bdirect[\s-]*(?:remo\w*|occlu\w*)|\br\s?-(?=$|[\s?.,!)/:;])",
}
# A rank question that names no method asks for the regions removed themselves (the ranking that measured most
# faithful, edgefx.explain.regions), and for the average map when the result does not have them.
MEASURED = "region_removal"
RANK_INTENTS = ("top", "second", "least")
_METHOD_PARTIAL = [
    (r"\bremov\w*|\bocclu\w*|\bhiding\b|\bdeletion\b", ["single_removal", "greedy_removal"]),
    (r"\baggr?eg\w*|\bagreg\w*", ["single_aggregation", "greedy_aggregation"]),
    (r"\bgreedy\b", ["greedy_removal", "greedy_aggregation"]),
    (r"\bsingle\b", ["single_removal", "single_aggregation"]),
]
_STEP_PAT = {
    "detect": r"\bdetect\w*|\bfind(?:ing)? (?:the |my |a )?faces?\b|\blocat\w* (?:the )?faces?|face[\s-]?finding",
    "align": r"\balign\w*|\baligne?ment\b",
    "embed": r"\bembed\w*|\bfeature extraction\b|\bdescriptor\w*|\bencod(?:e|ing) the faces?",
    "decode": r"\bdecod\w*|\bload(?:ing)? (?:the )?(?:images?|photos?|pictures?)|\bread(?:ing)? (?:the )?(?:images?|photos?|files?)",
    "decide": r"\bcompar\w* (?:the )?(?:embeddings|vectors|features)|\bdecision step\b|\bdecid\w* step|\bmatching step\b|\bthe comparison\b|\bcomparing\b",
    "explain": r"\bexplan\w*|\bexplain\w*|\bsaliency\b|\bheat\s?maps?\b|\bmaps?\b|\battribution\w*|\bimportance\b",
}
_SECOND_PAT = re.compile(r"\bsecond[\s-]*(?:most|highest|biggest|largest|best|strongest|place|ranked|"
                         r"in (?:importance|rank|line|the ranking|the list))|\b(?:came|come|comes|ranked|ranks|placed|"
                         r"rank|is|was|were|in) (?:at )?second\b|\brunner[\s-]?up\b|\bnumber (?:two|2)\b|\b2nd[\s-]*"
                         r"(?:most|highest|biggest|place|best)|\bnext most\b|\bbelow the top\b|\bafter the (?:top|first|most)")
_LEAST_PAT = re.compile(r"\bleast\b|\blowest\b|\bbottom\b|\blast\b|\bsmallest\b|\bminimum importance\b|"
                        r"\bmattered (?:the )?less\b|\bunimportant\b|\bweakest\b|\bleast\w*")
_TOP_PAT = re.compile(r"\bmost\b|\bhighest\b|\btop\b|\bbiggest\b|\bstrongest\b|\bmain\b|\bkey\b|\bfirst\b|\bnumber one\b")


def photos_in(q: str) -> list[str]:
    """The photos named ("a" reference, "b" live); none or both named: both, the live photo first."""
    t = _REGION_SIDE.sub(" region ", q)                 # 'left eye' is a region, not the left photo
    t = re.sub(r"\b(?:my|his|her|their|the subject'?s|the person'?s|photo'?s|picture'?s|image'?s) (?:own )?(?:left|right)\b",
               " ", t)
    if any(re.search(p, t) for p in _BOTH_PAT):
        return ["b", "a"]
    a = any(re.search(p, t) for p in _A_PAT)
    b = any(re.search(p, t) for p in _B_PAT)
    if a and not b:
        return ["a"]
    if b and not a:
        return ["b"]
    return ["b", "a"]


def methods_named(q: str) -> list[str]:
    """Saliency methods named in full ("greedy removal", "S+", "the average")."""
    return [m for m, p in _METHOD_PAT.items() if re.search(p, q)]


def methods_in(q: str) -> list[str]:
    """Saliency methods named, fully or in part ("greedy" -> both greedy methods)."""
    found = methods_named(q)
    if found:
        return found
    for p, ms in _METHOD_PARTIAL:
        if re.search(p, q):
            return ms
    return []


def regions_in(q: str) -> list[str]:
    """Face regions named; a side-less "eyes" or "cheeks" means both."""
    found: list[str] = []
    sided = set()
    for m in _REGION_SIDE.finditer(q):
        sides = [s for s in (m.group(1), m.group(2)) if s]
        part = m.group(3)
        base = "eyebrow" if "brow" in part else ("eye" if part.startswith("eye") else "cheek")
        for s in sides:
            found.append(f"{s}_{base}")
        sided.add(base)
    t = _REGION_SIDE.sub(" ", q)
    if re.search(r"\bfore[\s-]?head\b|\btemples?\b", t):
        found.append("forehead")
    if "eyebrow" not in sided and re.search(r"\beye[\s-]?brows?\b|\bbrows?\b", t):
        found += ["left_eyebrow", "right_eyebrow"]
    t2 = re.sub(r"\beye[\s-]?brows?\b", " ", t)
    if "eye" not in sided and re.search(r"\beyes?\b|\beye area\b", t2):
        found += ["left_eye", "right_eye"]
    if re.search(r"\bnose\b|\bnostrils?\b", t):
        found.append("nose")
    if "cheek" not in sided and re.search(r"\bcheeks?\b|\bcheekbones?\b", t):
        found += ["left_cheek", "right_cheek"]
    if re.search(r"\bmouth\b|\blips?\b|\bteeth\b", t):
        found.append("mouth")
    if re.search(r"\bchin\b|\bjaw\w*\b", t):
        found.append("chin")
    return [r for r in REGIONS if r in found]


def steps_in(q: str) -> list[str]:
    """Pipeline steps named (for timing questions)."""
    # "comparing the embeddings" names the comparison step; its object must not also name the embedding step
    decide = re.search(_STEP_PAT["decide"], q)
    rest = re.sub(_STEP_PAT["decide"], " ", q) if decide else q
    return [s for s, p in _STEP_PAT.items() if re.search(p, q if s == "decide" else rest)]


def slots(q: str) -> dict[str, object]:
    """Every slot of a normalised question."""
    return {"photos": photos_in(q), "methods": methods_in(q), "regions": regions_in(q), "steps": steps_in(q),
            "second": bool(_SECOND_PAT.search(q)), "least": bool(_LEAST_PAT.search(q)),
            "top": bool(_TOP_PAT.search(q))}


# Identification intents: a pair verification cannot know who anyone is, so it refuses them as out of scope.
IDENTITY_INTENTS = {"who", "runner_up", "lead"}
_PERSON_CUE = re.compile(r"\b(?:who|whom|person|people|someone|somebody|subject|candidates?|enrol+ed|individual|name)\b")
_FACE_PART = re.compile(r"\b(?:regions?|parts?|areas?|features?|bits?|zones?|face)\b")
_RANK_CUE = re.compile(r"\b(?:most|top|first|highest|biggest|second|2nd|least|lowest|last|bottom|rank\w*|runner)\b")
_PART_CUE = re.compile(r"\b(?:region|regions|part|parts|area|areas|feature|features|bit|place|came|come|put|find|found)\b")
_SIDES_CUE = re.compile(r"\b(?:my|your|whose|his|her|viewer'?s?|camera'?s|picture'?s|photo'?s|image'?s|subject'?s|person'?s)"
                        r" (?:own )?(?:left|right)\b|\bmirror\w*|\bperspective\b|\bpoint of view\b|\bwhich side\b|"
                        r"\bleft (?:or|and) right\b|\bright (?:or|and) left\b|\bfrom (?:my|the) (?:side|view)")


def refine_intent(intent: str, q: str) -> str:
    """Structural fixes where the embedding mixes up neighbouring intents."""
    qn = q
    if intent == "method" and _RANK_CUE.search(qn) and _PART_CUE.search(qn) and not re.search(
            r"\bwhat (?:does|do|is)\b.*\b(?:mean|do|stand for)\b|\bexplain\b|\bhow does\b", qn):
        s = slots(qn)
        return "second" if s["second"] else ("least" if s["least"] else "top")
    if intent in ("top", "second", "least") and _PERSON_CUE.search(qn) and not _FACE_PART.search(qn) \
            and not regions_in(qn):
        return "runner_up" if slots(qn)["second"] else "who"  # "who came second?" asks for a person, not a region
    if intent == "sides" and regions_in(qn) and not _SIDES_CUE.search(qn):
        return "share"
    if intent == "top" and methods_in(qn) and not _RANK_CUE.search(qn) and re.search(
            r"\bmean\w*|\bstand for\b|\bexplain\w*|\bhow does\b.*\bwork|\bwhat (?:is|does)\b", qn):
        return "method"
    if intent == "confidence" and re.search(r"\bmean\w*|\btell (?:me|us)\b|\brepresent\w*|\binterpret\w*|"
                                            r"\bstand for\b|\bbased on\b|\bcalculat\w*|\bcomput\w*|\bworked out\b", qn):
        return "confidence_meaning"
    return intent


def preferred_keys(keys: list[str], q: str) -> dict[str, str]:
    """For the keys of a rank question that names no method: key -> the measured ranking's key, to use instead when
    the result has it."""
    if methods_in(q):
        return {}
    return {k: f"{k.rsplit(':', 1)[0]}:{MEASURED}" for k in keys
            if k.split(":")[0] in RANK_INTENTS and k.endswith(":average")}


def keys_for(intent: str, q: str) -> list[str]:
    """The fact keys a (normalised) question of this intent asks for, in the order to answer them."""
    intent = refine_intent(intent, q)
    s = slots(q)
    ps = s["photos"]
    if intent in ("top", "second", "least"):
        # rank words decide between the three rank intents
        if s["second"]:
            intent = "second"
        elif s["least"] and not re.search(r"\bat least\b", q):
            intent = "least"
        elif s["top"]:
            intent = "top"
        ms = s["methods"] or ["average"]
        return [f"{intent}:{p}:{m}" for p in ps for m in ms]
    if intent == "share":
        # The result states each region's share of the average map only. A share of a part that is no region (ears,
        # hair, neck) or under another method is not in it: no keys, an honest "not in this result", never the
        # share of some other region.
        if any(m != "average" for m in methods_named(q)):
            return []
        return [f"share:{p}:{r}" for p in ps for r in s["regions"]]
    if intent in PHOTO_INTENTS:
        return [f"{intent}:{p}" for p in ps]
    if intent == "method":
        return [f"method:{m}" for m in (s["methods"] or METHODS)]
    if intent == "who":
        return ["who", "claimed"]  # identified (1:N), or checked against a claimed identity (1:1)
    if intent == "time":
        return [f"time:{st}" for st in (s["steps"] or ["total"])]
    return [intent]


