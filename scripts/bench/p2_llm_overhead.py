"""P2: LLM turns through the gateway vs the vLLM engine called directly (no Ray, no Serve), same run.
Targets: aggregate tokens/s at 8 concurrent >= 0.9x; p50 time-to-first-token overhead <= 30 ms.

    .venv/bin/python scripts/bench/p2_llm_overhead.py [--concurrency 8] [--requests 32] [--ttft-requests 30]

Each side runs in its own subprocess (the two engines never share the 2 cores): first the direct engine
(vllm AsyncLLM in-process, same model folder, same engine settings, the same chat messages rendered with the
model's chat template), then the full service (`/v1/chat/completions`, streaming, through Serve proxy →
gateway → edge → router → LLMServer). Both use temperature 0 and the same max_tokens, so both generate the same
tokens. TTFT is measured with one request at a time; throughput with ``--concurrency`` streams.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, pct  # noqa: E402

QUESTION = "Explain what a common denominator is, with one small example."


def _messages() -> list[dict[str, str]]:
    from tutor_cluster.core import prompts

    return prompts.chat_messages([{"role": "user", "content": QUESTION}], mode="explain")


def _summary(ttfts: list[float], tokens: int, wall: float) -> dict[str, float]:
    return {"ttft_p50_ms": pct(ttfts, 50) * 1000, "ttft_p90_ms": pct(ttfts, 90) * 1000,
            "tokens": tokens, "wall_s": wall, "tok_per_s": tokens / wall}


# ----------------------------------------------------------------------------- direct engine
def phase_direct(args: argparse.Namespace) -> dict:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer
    from vllm import AsyncEngineArgs, SamplingParams
    from vllm.sampling_params import RequestOutputKind
    from vllm.v1.engine.async_llm import AsyncLLM

    from tutor_cluster.config.settings import load_settings
    from tutor_cluster.core.engine import resolve_source

    settings = load_settings()
    entry = settings.catalogue.get("tutor-small")
    eng = settings.catalogue.engines[entry.engine]
    path = resolve_source(eng.source)
    tok = AutoTokenizer.from_pretrained(path)
    prompt = tok.apply_chat_template(_messages(), tokenize=False, add_generation_prompt=True)
    engine = AsyncLLM.from_engine_args(AsyncEngineArgs(
        model=path, max_model_len=eng.max_model_len, dtype=eng.dtype, enforce_eager=eng.enforce_eager))

    async def one(i: int, max_tokens: int) -> tuple[float, int]:
        sp = SamplingParams(max_tokens=max_tokens, temperature=0, output_kind=RequestOutputKind.DELTA)
        t0 = time.perf_counter()
        first, n = None, 0
        async for out in engine.generate(prompt, sp, request_id=f"r{i}-{time.time_ns()}"):
            got = len(out.outputs[0].token_ids)
            if got and first is None:
                first = time.perf_counter() - t0
            n += got
        return first or 0.0, n

    async def run() -> dict:
        for i in range(3):
            await one(i, 8)
        ttfts = [(await one(100 + i, 8))[0] for i in range(args.ttft_requests)]
        sem = asyncio.Semaphore(args.concurrency)

        async def bounded(i: int) -> tuple[float, int]:
            async with sem:
                return await one(1000 + i, args.max_tokens)

        t0 = time.perf_counter()
        res = await asyncio.gather(*(bounded(i) for i in range(args.requests)))
        wall = time.perf_counter() - t0
        return _summary(ttfts, sum(n for _, n in res), wall)

    out = asyncio.run(run())
    engine.shutdown()
    return out


# ----------------------------------------------------------------------------- through the gateway
def phase_gateway(args: argparse.Namespace) -> dict:
    from tutor_cluster import runtime
    from tutor_cluster.app.local import start_ray

    runtime.apply_ray_env()  # before ray is imported: the same Ray/Serve environment as `tutor-cluster up`
    import httpx
    import ray
    from ray import serve

    from tutor_cluster.api.auth import hash_key, new_key
    from tutor_cluster.app.builder import build_app
    from tutor_cluster.config.auth import ApiKey, AuthConfig
    from tutor_cluster.config.settings import load_settings

    key = new_key()
    settings = load_settings()
    settings = settings.model_copy(update={"auth": AuthConfig(api_keys=[ApiKey(id="bench", sha256=hash_key(key))])})
    start_ray(settings)  # the same Ray/Serve environment as `tutor-cluster up`
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(build_app(settings), name="tutor", route_prefix="/")
    url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}

    async def one(client: httpx.AsyncClient, max_tokens: int) -> tuple[float, int]:
        body = {"model": "tutor-small", "messages": [{"role": "user", "content": QUESTION}], "stream": True,
                "max_tokens": max_tokens, "temperature": 0, "stream_options": {"include_usage": True}}
        t0 = time.perf_counter()
        first, usage = None, 0
        async with client.stream("POST", url, json=body, headers=headers) as r:
            if r.status_code != 200:
                raise RuntimeError(await r.aread())
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if first is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                    first = time.perf_counter() - t0
                if chunk.get("usage"):
                    usage = chunk["usage"]["completion_tokens"]
        return first or 0.0, usage

    async def run() -> dict:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=args.concurrency)) as client:
            for _ in range(3):
                await one(client, 8)
            ttfts = [(await one(client, 8))[0] for _ in range(args.ttft_requests)]
            sem = asyncio.Semaphore(args.concurrency)

            async def bounded() -> tuple[float, int]:
                async with sem:
                    return await one(client, args.max_tokens)

            t0 = time.perf_counter()
            res = await asyncio.gather(*(bounded() for _ in range(args.requests)))
            wall = time.perf_counter() - t0
        return _summary(ttfts, sum(n for _, n in res), wall)

    out = asyncio.run(run())
    serve.shutdown()
    ray.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phase", choices=["direct", "gateway"], help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ttft-requests", type=int, default=30)
    ap.add_argument("--port", type=int, default=8312)
    args = ap.parse_args()
    if args.phase:
        result = phase_direct(args) if args.phase == "direct" else phase_gateway(args)
        print("RESULT " + json.dumps(result), flush=True)
        os._exit(0)  # skip slow interpreter teardown of engine threads

    results = {}
    for phase in ("direct", "gateway"):
        cmd = [sys.executable, __file__, "--phase", phase, *sys.argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
            raise SystemExit(f"phase {phase} failed (exit {proc.returncode})")
        results[phase] = json.loads(line[7:])
    d, g = results["direct"], results["gateway"]
    ratio = g["tok_per_s"] / d["tok_per_s"]
    overhead = g["ttft_p50_ms"] - d["ttft_p50_ms"]
    print(f"P2 {dt.date.today()} on {machine()}; {args.requests} requests x {args.max_tokens} tokens at "
          f"concurrency {args.concurrency}; TTFT over {args.ttft_requests} sequential requests")
    print(f"  {'':22s} {'direct vLLM':>12s} {'gateway':>12s}")
    print(f"  {'tokens/s @ conc':22s} {d['tok_per_s']:12.1f} {g['tok_per_s']:12.1f}   ratio {ratio:.2f}x (target >= 0.90)")
    print(f"  {'TTFT p50 ms':22s} {d['ttft_p50_ms']:12.1f} {g['ttft_p50_ms']:12.1f}   overhead {overhead:+.1f} ms "
          "(target <= 30)")
    print(f"  {'TTFT p90 ms':22s} {d['ttft_p90_ms']:12.1f} {g['ttft_p90_ms']:12.1f}")
    print(f"  {'tokens generated':22s} {d['tokens']:12d} {g['tokens']:12d}")
    print(json.dumps({"bench": "P2", "throughput_ratio": ratio, "ttft_overhead_ms": overhead, **results}))


if __name__ == "__main__":
    main()
