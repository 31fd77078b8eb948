"""Client-check classification throughput, next to the raw ua-parser parse rate on the same machine.

    make bench                                  # every tests/bench/bench_*.py
    .venv/bin/python tests/bench/bench_classify.py [--n 20000] [--repeat 3] [--check]

Rows:
  raw ua-parser  ``ua_parser.regex.Resolver(load_builtins())`` called directly
                 (Domain.USER_AGENT | Domain.OS) on N unique strings: the floor
                 any classifier built on it pays per new string.
  cold           a fresh Classifier (caches bigger than N) on the same N unique
                 strings: every string is parsed once, then judged.
  warm           the same strings again: every call is a cache hit.
  warm + hints   as warm, with client hints (the API's usual request).

Targets: warm >= 50,000/s; cold >= 0.8 x raw. The unique strings vary real user
agents (build numbers, device models, app builds) in the proportions a
marketplace sees: mostly Chrome/Edge, then Safari, mobile, Firefox, in-app.
Not a test: pytest does not collect tests/bench (setup.cfg norecursedirs).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from ua_parser import Domain, load_builtins  # noqa: E402
from ua_parser.regex import Resolver  # noqa: E402

from verify_service.support import catalog as catalog_module  # noqa: E402
from verify_service.support.classify import Classifier  # noqa: E402
from verify_service.support.hints import Brand, ClientHints  # noqa: E402

WARM_TARGET = 50_000  # classifications per second
COLD_RATIO_TARGET = 0.8  # of the raw parse rate

ANDROID_MODELS = ["SM-S901B", "SM-A546B", "SM-G991B", "Pixel 8", "Pixel 7a", "Redmi Note 12", "CPH2451",
                  "moto g(60)", "M2101K6G", "V2202", "RMX3630", "2201117TY", "SM-A155F", "Infinix X6833B"]
IE_TOKENS = ["SLCC2", ".NET CLR 2.0.50727", ".NET CLR 3.5.30729", ".NET CLR 3.0.30729", "Media Center PC 6.0",
             ".NET4.0C", ".NET4.0E", "Touch", "Tablet PC 2.0"]


def _templates(rng: random.Random) -> list[Callable[[], str]]:
    def build() -> tuple[int, int, int]:
        return rng.randint(120, 142), rng.randint(6000, 7600), rng.randint(0, 250)

    def chrome(os_part: str) -> Callable[[], str]:
        def make() -> str:
            major, b, p = build()
            return (f"Mozilla/5.0 ({os_part}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.{b}.{p} "
                    "Safari/537.36")
        return make

    def edge() -> str:
        major, b, p = build()
        return ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{major}.0.0.0 Safari/537.36 Edg/{major}.0.{rng.randint(2000, 3600)}.{p}")

    def firefox() -> str:
        major = rng.randint(115, 145)
        os_part = rng.choice(["Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10.15",
                              "X11; Linux x86_64", "X11; Ubuntu; Linux x86_64", "Windows NT 6.1; Win64; x64"])
        return f"Mozilla/5.0 ({os_part}; rv:{major}.0) Gecko/20100101 Firefox/{major}.{rng.randint(0, 3)}"

    def safari() -> str:
        v = f"{rng.choice([16, 17, 18, 26])}.{rng.randint(0, 6)}" + (f".{rng.randint(1, 3)}" if rng.random() < .3
                                                                   else "")
        return ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                f"Version/{v} Safari/605.1.15")

    def iphone() -> str:
        ios = f"{rng.choice([16, 17, 18])}_{rng.randint(0, 7)}"
        return (f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                f"Version/{ios.split('_')[0]}.{rng.randint(0, 6)} Mobile/15E148 Safari/604.1")

    def android() -> str:
        major, b, p = build()
        return (f"Mozilla/5.0 (Linux; Android {rng.randint(10, 15)}; {rng.choice(ANDROID_MODELS)}) "
                f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.{b}.{p} Mobile Safari/537.36")

    def facebook_in_app() -> str:
        major, b, p = build()
        return (f"Mozilla/5.0 (Linux; Android {rng.randint(10, 15)}; {rng.choice(ANDROID_MODELS)} "
                f"Build/AP2A.{rng.randint(240000, 250000)}.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Version/4.0 Chrome/{major}.0.{b}.{p} Mobile Safari/537.36 "
                f"[FB_IAB/FB4A;FBAV/{rng.randint(400, 520)}.0.0.{rng.randint(10, 60)}.{rng.randint(10, 200)};]")

    def opera() -> str:
        major, b, p = build()
        return ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{major}.0.0.0 Safari/537.36 OPR/{major - 15}.0.{b - 1000}.{p}")

    def ie11() -> str:
        nt = rng.choice(["6.1; WOW64", "6.3; WOW64", "10.0; WOW64", "6.1; Win64; x64", "10.0"])
        tokens = "".join(f"; {t}" for t in IE_TOKENS if rng.random() < 0.5)
        return f"Mozilla/5.0 (Windows NT {nt}; Trident/7.0{tokens}; rv:11.0) like Gecko"

    weighted = [
        (30, chrome("Windows NT 10.0; Win64; x64")), (10, chrome("Macintosh; Intel Mac OS X 10_15_7")),
        (4, chrome("X11; Linux x86_64")), (3, chrome("X11; CrOS x86_64 14541.0.0")), (10, edge),
        (8, firefox), (8, safari), (10, iphone), (10, android), (3, facebook_in_app), (3, opera), (1, ie11),
    ]
    return [make for weight, make in weighted for _ in range(weight)]


def unique_user_agents(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    makers = _templates(rng)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(rng.choice(makers)(), None)
    return list(seen)


def _cpu_model() -> str:
    try:  # Linux names the CPU here; platform.processor() is often empty
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu unknown"


def _rate(calls: int, run: Callable[[], None]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        run()
        return calls / (time.perf_counter() - start)
    finally:
        gc.enable()


def _consume(results: Iterable[object]) -> None:
    for _ in results:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="unique user agents (default 20000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row; the best is shown (default 5)")
    parser.add_argument("--warm-calls", type=int, default=200_000, help="calls in a warm run (default 200000)")
    parser.add_argument("--seed", type=int, default=20261101)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes one BENCH_ARGS to every script

    catalog = catalog_module.load()
    uas = unique_user_agents(args.n, args.seed)
    warmup = unique_user_agents(args.n + 200, args.seed + 1)[-200:]  # lazily built state, outside the timed set
    timed = set(uas)
    warmup = [ua for ua in warmup if ua not in timed][:100]
    domains = Domain.USER_AGENT | Domain.OS
    hints = ClientHints(brands=(Brand("Chromium", "142"), Brand("Google Chrome", "142"), Brand("Not_A Brand", "99")),
                        mobile=False, platform="Windows", platform_version="19.0.0")

    raw_rates, cold_rates, warm_rates, hinted_rates = [], [], [], []
    for _ in range(args.repeat):
        resolver = Resolver(load_builtins())
        for ua in warmup:
            resolver(ua, domains)
        raw_rates.append(_rate(len(uas), lambda: _consume(resolver(ua, domains) for ua in uas)))

        classifier = Classifier(cache_size=2 * (args.n + len(warmup)))
        for ua in warmup:
            classifier.classify(ua, None, catalog)
        cold_rates.append(_rate(len(uas), lambda: _consume(classifier.classify(ua, None, catalog) for ua in uas)))

        passes = max(1, args.warm_calls // len(uas))
        repeated = uas * passes
        warm_rates.append(_rate(len(repeated), lambda: _consume(
            classifier.classify(ua, None, catalog) for ua in repeated)))
        for ua in uas:  # fill the cache for (ua, hints)
            classifier.classify(ua, hints, catalog)
        hinted_rates.append(_rate(len(repeated), lambda: _consume(
            classifier.classify(ua, hints, catalog) for ua in repeated)))

    raw, cold, warm, hinted = (max(r) for r in (raw_rates, cold_rates, warm_rates, hinted_rates))
    cold_ratio = cold / raw
    rows = [
        ("raw ua-parser (N unique)", raw, "", ""),
        ("cold classify (N unique)", cold, f"{cold_ratio:.2f} x raw", f">= {COLD_RATIO_TARGET} x raw"),
        ("warm classify (repeated)", warm, f"{warm / raw:.1f} x raw", f">= {WARM_TARGET:,}/s"),
        ("warm classify + hints", hinted, f"{hinted / raw:.1f} x raw", f">= {WARM_TARGET:,}/s"),
    ]
    cold_ok, warm_ok = cold_ratio >= COLD_RATIO_TARGET, warm >= WARM_TARGET and hinted >= WARM_TARGET

    versions = ", ".join(f"{name} {importlib.metadata.version(name)}"
                         for name in ("ua-parser", "ua-parser-rs", "ua-parser-builtins"))
    print("bench_classify: client-check classification throughput")
    print(f"machine: {platform.platform()}; {platform.machine()}; {_cpu_model()}; "
          f"os.cpu_count()={os.cpu_count()}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}; {versions}")
    print(f"N={len(uas):,} unique user agents (seed {args.seed}), best of {args.repeat} runs, one thread")
    print()
    print(f"{'':28}{'per second':>14}  {'ratio':<14}{'target':<16}")
    for label, rate, ratio, target in rows:
        print(f"{label:28}{rate:>14,.0f}  {ratio:<14}{target:<16}")
    print()
    print(f"cold/raw = {cold_ratio:.2f} ({'met' if cold_ok else 'MISSED'}: target {COLD_RATIO_TARGET}); "
          f"warm = {min(warm, hinted):,.0f}/s ({'met' if warm_ok else 'MISSED'}: target {WARM_TARGET:,}/s)")
    return 1 if args.check and not (cold_ok and warm_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
