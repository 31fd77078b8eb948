"""Property tests: whatever a client sends, the classifier answers with a valid, consistent verdict.

Arbitrary strings (control characters, huge ones), arbitrary JSON posted as
client hints, arbitrary ``Sec-CH-UA*`` header values: nothing raises, every
verdict validates against ``VerdictOut``, and the verdict agrees with its
parts (docs/architecture.md, 'Browser and system support').
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_ua_corpus import CATALOG, GREASE, REAL_UAS, _assert_consistent
from verify_service.support.classify import Classifier
from verify_service.support.hints import ClientHints, from_headers, from_json, merge
from verify_service.support.schemas import VerdictOut

CLASSIFIER = Classifier(cache_size=512)  # small: the cache is exercised (hits, evictions) too
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies

# Any text: st.text() includes control characters, NUL and astral code points.
anything = st.text(max_size=5000)
# Real user agents, cut, spliced and padded: close enough to real to reach the deep branches.
mangled_ua = st.one_of(
    st.sampled_from(REAL_UAS),
    st.builds(lambda ua, cut: ua[:cut], st.sampled_from(REAL_UAS), st.integers(0, 300)),
    st.builds(lambda ua, junk, at: ua[:at] + junk + ua[at:], st.sampled_from(REAL_UAS), st.text(max_size=40),
              st.integers(0, 300)),
    st.builds(lambda a, b: a[: len(a) // 2] + b[len(b) // 2:], st.sampled_from(REAL_UAS), st.sampled_from(REAL_UAS)),
    st.builds(lambda ua, n: ua + " " + "A" * n, st.sampled_from(REAL_UAS), st.integers(0, 5000)),
)
user_agents = st.one_of(anything, mangled_ua)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=60))
json_values = st.recursive(json_scalars, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(st.text(max_size=10), children, max_size=5)), max_leaves=20)

brand_names = st.one_of(st.sampled_from(["Google Chrome", "Microsoft Edge", "Chromium", "Opera", "Brave",
                                         "YaBrowser", "Samsung Internet", "Microsoft Edge WebView2", *GREASE]),
                        st.text(max_size=120))
versions = st.one_of(st.sampled_from(["142", "141", "140", "139", "8", "99", "142.0.7444.60", "", "0", "-1",
                                      "99999999999999999999", "1e9", " 142"]), st.text(max_size=50))
brand_entries = st.one_of(st.fixed_dictionaries({"brand": brand_names, "version": versions}),
                          st.fixed_dictionaries({}, optional={"brand": json_values, "version": json_values}),
                          json_values)
brand_lists = st.one_of(st.lists(brand_entries, max_size=14), json_values)
platforms = st.one_of(st.sampled_from(["Windows", "macOS", "Chrome OS", "Chromium OS", "Linux", "Android", "iOS",
                                       "", "windows", "MACOS"]), json_values)
platform_versions = st.one_of(st.sampled_from(["15.0.0", "19.0.0", "13.0.0", "10.0.0", "1.0.0", "0.3.0", "0.1.0",
                                               "15.1.0", "26.0.0", "13.6.0", "10.15.7", "16433.56.0", "", "x",
                                               "13", "99999999999999999999.0.0", "-1.0.0", "1..2"]), json_values)
posted_hints = st.fixed_dictionaries({}, optional={
    "brands": brand_lists, "fullVersionList": brand_lists, "mobile": json_values, "platform": platforms,
    "platformVersion": platform_versions, "touchMac": json_values, "architecture": json_values,
})
posted = st.one_of(posted_hints, st.dictionaries(st.text(max_size=20), json_values, max_size=6))


def _sf_item(brand: str, version: str) -> str:
    esc = lambda s: s.replace("\\", "\\\\").replace('"', '\\"')  # noqa: E731
    return f'"{esc(brand)}";v="{esc(version)}"'


sf_lists = st.one_of(
    st.lists(st.builds(_sf_item, brand_names, versions), max_size=12).map(", ".join),
    st.text(alphabet=st.sampled_from('"\\;=,?() abcv0123456789_-.:/'), max_size=300),
    st.text(max_size=500),
)
header_values = st.one_of(st.text(max_size=200), st.sampled_from(['"Windows"', '"macOS"', '"Chrome OS"',
                                                                  '"Android"', '"Linux"', '""', '"', "?0", "?1",
                                                                  '"15.0.0"', '"0.3.0"', '"13.6.0"']))
header_sets = st.fixed_dictionaries({}, optional={
    "Sec-CH-UA": sf_lists, "Sec-CH-UA-Full-Version-List": sf_lists, "Sec-CH-UA-Mobile": header_values,
    "Sec-CH-UA-Platform": header_values, "Sec-CH-UA-Platform-Version": header_values,
})


# ------------------------------------------------------------------ properties

def _check(user_agent: str, hints: ClientHints | None) -> dict[str, Any]:
    verdict = CLASSIFIER.classify(user_agent, hints, CATALOG).as_dict()
    VerdictOut.model_validate(verdict)
    _assert_invariants(verdict)
    return verdict


def _assert_invariants(verdict: dict[str, Any]) -> None:
    browser_ok, os_ok = verdict["browser"]["supported"], verdict["os"]["supported"]
    if verdict["verdict"] == "supported":
        assert browser_ok is True and os_ok is True, verdict
    if verdict["verdict"] == "unsupported":
        assert browser_ok is False or os_ok is False, verdict
    if verdict["verdict"] == "use_mobile_app":
        assert verdict["mobile"] is True, verdict
    # and the converse: a part known to be unsupported never yields anything softer than 'unsupported'
    # (phones and IE 11 aside, which have their own answers)
    if (browser_ok is False or os_ok is False) and verdict["verdict"] not in ("use_mobile_app", "plugin_required"):
        assert verdict["verdict"] == "unsupported", verdict
    if browser_ok is True and os_ok is True and not verdict["mobile"]:
        assert verdict["verdict"] == "supported", verdict
    _assert_consistent(verdict)


@FAST
@given(user_agent=user_agents)
def test_any_user_agent_gives_a_valid_verdict(user_agent: str) -> None:
    _check(user_agent, None)


@FAST
@given(user_agent=user_agents, data=posted)
def test_any_posted_hints_give_a_valid_verdict(user_agent: str, data: dict[str, Any]) -> None:
    hints = from_json(data)
    if hints is not None:
        hash(hints)  # results are cached per hints: they must be hashable
    _check(user_agent, hints)


@FAST
@given(user_agent=user_agents, headers=header_sets, data=st.one_of(st.none(), posted_hints))
def test_any_client_hint_headers_give_a_valid_verdict(user_agent: str, headers: dict[str, str],
                                                      data: dict[str, Any] | None) -> None:
    from_request = from_headers(headers)
    if from_request is not None:
        hash(from_request)
        assert len(from_request.brands) <= 10 and len(from_request.full_version_list) <= 10
    _check(user_agent, merge(from_request, from_json(data)))


@settings(max_examples=60, deadline=None)
@given(user_agent=user_agents, data=posted)
def test_the_cache_never_changes_an_answer(user_agent: str, data: dict[str, Any]) -> None:
    hints = from_json(data)
    first = CLASSIFIER.classify(user_agent, hints, CATALOG)
    again = CLASSIFIER.classify(user_agent, hints, CATALOG)
    fresh = Classifier._classify(CLASSIFIER, user_agent, hints, CATALOG)  # the uncached path
    assert first == again == fresh


@settings(max_examples=40, deadline=None)
@given(grease=st.sampled_from(GREASE), position=st.integers(0, 2), major=st.integers(100, 150))
def test_grease_never_decides_the_browser(grease: str, position: int, major: int) -> None:
    brands = [f'"Chromium";v="{major}"', f'"Google Chrome";v="{major}"']
    brands.insert(position, f'"{grease}";v="99"')
    hints = from_headers({"Sec-CH-UA": ", ".join(brands), "Sec-CH-UA-Platform": '"Windows"',
                          "Sec-CH-UA-Platform-Version": '"15.0.0"'})
    ua = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          f"Chrome/{major}.0.0.0 Safari/537.36")
    verdict = _check(ua, hints)
    assert verdict["browser"]["family"] == "chrome" and verdict["browser"]["major"] == major
    assert verdict["verdict"] == ("supported" if major >= 140 else "unsupported")


@settings(max_examples=30, deadline=None)
@given(pad=st.text(max_size=5000), repeat=st.integers(1, 200))
def test_huge_inputs_are_cut_not_choked_on(pad: str, repeat: int) -> None:
    _check((pad * repeat)[:200_000], None)
    _check("Mozilla/5.0 (" * repeat + pad, None)
