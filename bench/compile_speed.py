"""Compile speed of neuron-opt on transformer-like nt modules of 1k, 10k and 100k ops.

The module is one func holding L encoder layers (sequence 128, hidden 768, 12 heads, FFN 3072,
the shapes of BERT-base), 42 ops a layer, 8 of them contractions (19%): 6 nt.linear,
2 nt.batch_matmul (attention) and 1 nt.matmul (FFN out, bias added by nt.add), plus
layer_norm, softmax, gelu, add, mul, transpose, reshape, one nt.constant (attention scale) and
16 nt.weight ops, each used once, as the ONNX importer emits them. Types are written out in
full (no `!alias`), as neuron-opt itself prints IR; `--type-alias` writes aliases instead
(docs/design.md §7: they halve lexing).

In process (gc disabled during the work, as the driver does) it times parse (LocatingParser),
verify_module, print (custom and generic form), then for --auto-cast=matmult and =all
(type bf16) each pass and the verify the driver runs after it, and printing the result.
Then the CLI as subprocesses (wall and child CPU time, peak RSS; median of --repeat runs,
interleaved so drift hits every command alike):

    neuron-opt FILE                          the no-pass round trip (the baseline)
    neuron-opt FILE --auto-cast=matmult      target <= 1.5x the baseline at 100k, 1.3 wanted
    neuron-opt FILE --auto-cast=all
    xdsl-opt FILE.generic.mlir               xDSL's own driver, nt loaded via `xdsl.universe`
    xdsl-opt FILE                            same, on the custom form (same input as ours)

Writes the IR under bench/results/compile_speed/ and the figures to
bench/results/compile_speed.json. `--profile N` profiles (cProfile) the in-process matmult
pipeline on the N-op module and lists the hot spots in our own code.

    .venv/bin/python bench/compile_speed.py                       # 1k, 10k, 100k (minutes)
    .venv/bin/python bench/compile_speed.py --sizes 1000,10000 --profile 10000
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from bench_common import RESULTS, ROOT, write_json
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from xdsl.printer import Printer

from neuron_opt.cli.common import make_context
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.options import CASTING_MODES
from neuron_opt.passes.pipeline import cast_pipeline

IR_DIR = RESULTS / "compile_speed"
BIN = Path(sys.executable).parent  # neuron-opt and xdsl-opt of this venv
TARGET, WANTED = 1.5, 1.3  # docs/design.md §7: matmult pipeline / no-pass round trip at 100k
MODES = CASTING_MODES
console = Console()

# ---------------------------------------------------------------------------------------------
# The module


S, D, H, DH, F = 128, 768, 12, 64, 3072  # BERT-base shapes, batch 1


def _t(*shape: int) -> str:
    return f"tensor<{'x'.join(map(str, shape))}xf32>" if shape else "tensor<f32>"


class _Writer:
    """Emits one encoder layer at a time as custom-form nt text."""

    def __init__(self, alias: bool):
        self.lines: list[str] = []
        self.n = 0  # next SSA number
        self.ops = 0
        self.contractions = 0
        self.aliases: dict[str, str] = {}
        self.alias = alias

    def ty(self, *shape: int) -> str:
        t = _t(*shape)
        if not self.alias:
            return t
        if t not in self.aliases:
            self.aliases[t] = "!t" + ("_".join(map(str, shape)) or "s")
        return self.aliases[t]

    def op(self, text: str, contraction: bool = False) -> str:
        v = f"%{self.n}"
        self.n += 1
        self.ops += 1
        self.contractions += contraction
        self.lines.append(f"    {v} = {text}")
        return v

    def weight(self, name: str, *shape: int) -> str:
        return self.op(f"nt.weight @{name} : {self.ty(*shape)}")

    def layer(self, i: int, x: str, mask: str) -> str:
        t, p = self.ty, f"l{i}."
        xs = t(S, D)
        g1, b1 = self.weight(p + "ln1.g", D), self.weight(p + "ln1.b", D)
        h = self.op(
            f"nt.layer_norm {x}, {g1}, {b1} {{axis = 1 : i64, epsilon = 1.0e-05 : f64}} : "
            f"({xs}, {t(D)}, {t(D)}) -> {xs}"
        )
        heads = []
        for name, perm, shape in (
            ("q", "1, 0, 2", (H, S, DH)),
            ("k", "1, 2, 0", (H, DH, S)),
            ("v", "1, 0, 2", (H, S, DH)),
        ):
            w, b = self.weight(p + name + ".w", D, D), self.weight(p + name + ".b", D)
            y = self.op(
                f"nt.linear {h}, {w}, {b} {{trans_b}} : ({xs}, {t(D, D)}, {t(D)}) -> {xs}", True
            )
            r = self.op(f"nt.reshape {y} : ({xs}) -> {t(S, H, DH)}")
            heads.append(
                self.op(
                    f"nt.transpose {r} {{perm = array<i64: {perm}>}} : "
                    f"({t(S, H, DH)}) -> {t(*shape)}"
                )
            )
        q, k, v = heads
        sc = t(H, S, S)
        s = self.op(f"nt.batch_matmul {q}, {k} : ({t(H, S, DH)}, {t(H, DH, S)}) -> {sc}", True)
        c = self.op(f"nt.constant 0.125 : {t()}")
        s = self.op(f"nt.mul {s}, {c} : ({sc}, {t()}) -> {sc}")
        s = self.op(f"nt.add {s}, {mask} : ({sc}, {t(S, S)}) -> {sc}")
        s = self.op(f"nt.softmax {s} {{axis = -1 : i64}} : {sc}")
        a = self.op(f"nt.batch_matmul {s}, {v} : ({sc}, {t(H, S, DH)}) -> {t(H, S, DH)}", True)
        a = self.op(
            f"nt.transpose {a} {{perm = array<i64: 1, 0, 2>}} : ({t(H, S, DH)}) -> {t(S, H, DH)}"
        )
        a = self.op(f"nt.reshape {a} : ({t(S, H, DH)}) -> {xs}")
        wo, bo = self.weight(p + "o.w", D, D), self.weight(p + "o.b", D)
        a = self.op(
            f"nt.linear {a}, {wo}, {bo} {{trans_b}} : ({xs}, {t(D, D)}, {t(D)}) -> {xs}", True
        )
        x = self.op(f"nt.add {x}, {a} : {xs}")
        g2, b2 = self.weight(p + "ln2.g", D), self.weight(p + "ln2.b", D)
        h = self.op(
            f"nt.layer_norm {x}, {g2}, {b2} {{axis = 1 : i64, epsilon = 1.0e-05 : f64}} : "
            f"({xs}, {t(D)}, {t(D)}) -> {xs}"
        )
        w1, c1 = self.weight(p + "ffn1.w", D, F), self.weight(p + "ffn1.b", F)
        f = self.op(f"nt.linear {h}, {w1}, {c1} : ({xs}, {t(D, F)}, {t(F)}) -> {t(S, F)}", True)
        f = self.op(f'nt.gelu {f} {{approximate = "tanh"}} : {t(S, F)}')
        w2, c2 = self.weight(p + "ffn2.w", F, D), self.weight(p + "ffn2.b", D)
        f = self.op(f"nt.matmul {f}, {w2} : ({t(S, F)}, {t(F, D)}) -> {xs}", True)
        f = self.op(f"nt.add {f}, {c2} : ({xs}, {t(D)}) -> {xs}")
        return self.op(f"nt.add {x}, {f} : {xs}")


OPS_PER_LAYER = 42


def build_module(n_ops: int, alias: bool) -> tuple[str, dict]:
    """The IR text of a module of about n_ops ops (whole layers) and what it holds."""
    w = _Writer(alias)
    x = "%x"
    for i in range(max(1, round(n_ops / OPS_PER_LAYER))):
        x = w.layer(i, x, "%mask")
    xs, ms = w.ty(S, D), w.ty(S, S)
    head = [f"{a} = {t}" for t, a in w.aliases.items()]
    body = [
        "builtin.module {",
        f"  func.func @encoder(%x: {xs}, %mask: {ms}) -> {xs} {{",
        *w.lines,
        f"    func.return {x} : {xs}",
        "  }",
        "}",
    ]
    text = "\n".join(head + body) + "\n"
    return text, {"ops": w.ops, "contractions": w.contractions, "layers": w.ops // OPS_PER_LAYER}


# ---------------------------------------------------------------------------------------------
# In process


def _count(module) -> int:
    return sum(1 for _ in module.walk()) - 3  # minus module, func and return


def _print(module, generic: bool = False) -> str:
    out = io.StringIO()
    Printer(stream=out, print_generic_format=generic).print_op(module)
    out.write("\n")
    return out.getvalue()


def _timed(times: dict, key: str, fn):
    """Adds fn's wall seconds to times[key] and its CPU seconds to times[key + "_cpu"] (CPU
    time stays honest when other jobs share the machine)."""
    t0, c0 = time.perf_counter(), time.process_time()
    r = fn()
    times[key] = times.get(key, 0.0) + time.perf_counter() - t0
    times[key + "_cpu"] = times.get(key + "_cpu", 0.0) + time.process_time() - c0
    return r


def in_process(path: Path, generic_path: Path) -> dict:
    """Per-phase seconds, as neuron_opt.cli.neuron_opt._process does them (gc off)."""
    text = path.read_text()
    ctx = make_context()
    res: dict = {}
    gc.collect()
    gc.disable()  # the driver's setting; without it large modules pay for cyclic GC
    try:
        t: dict = {}
        module = _timed(t, "parse", lambda: parse_module(ctx, text, str(path)))
        _timed(t, "verify", lambda: verify_module(module))
        _timed(t, "print", lambda: _print(module))
        generic = _timed(t, "print_generic", lambda: _print(module, generic=True))
        generic_path.write_text(generic)
        del generic
        res["input_ops"] = _count(module)
        res["roundtrip"] = t
        copies = {"matmult": module, "all": module.clone()}  # one parse for both modes
        for mode in MODES:
            m, t = copies[mode], {}
            for p in cast_pipeline(mode, "bf16"):
                _timed(t, p.name, lambda: p.apply(ctx, m))
                _timed(t, "verify_after", lambda: verify_module(m))
            _timed(t, "print", lambda: _print(m))
            res[mode] = {"times": t, "output_ops": _count(m)}
    finally:
        gc.enable()
    return res


# ---------------------------------------------------------------------------------------------
# CLI


# Forks, execs and waits for the command from a fresh small process: a child spawned straight
# from this one (vfork) would inherit this process's RSS high-water mark at exec, so ru_maxrss
# would report the benchmark's size, not the command's. The launcher's own start-up is not timed.
_LAUNCHER = """
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "rss_mb": ru.ru_maxrss / 1024, "code": os.waitstatus_to_exitcode(status)}))
"""


def _run(cmd: list[str]) -> dict:
    """Wall seconds, CPU seconds and peak RSS of one run of cmd; its output discarded."""
    with tempfile.TemporaryFile() as err:
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, *cmd],
            stdout=subprocess.PIPE,
            stderr=err,
            check=True,
        ).stdout
        r = json.loads(out)
        if r.pop("code") != 0:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"{' '.join(cmd)} failed: {msg}")
    return r


def cli_commands(path: Path, generic_path: Path) -> dict[str, list[str]]:
    neuron, xdsl = str(BIN / "neuron-opt"), str(BIN / "xdsl-opt")
    return {
        "neuron-opt": [neuron, str(path)],
        "neuron-opt matmult": [neuron, str(path), "--auto-cast=matmult"],
        "neuron-opt all": [neuron, str(path), "--auto-cast=all"],
        "xdsl-opt generic": [xdsl, str(generic_path)],
        "xdsl-opt custom": [xdsl, str(path)],
    }


def cli(path: Path, generic_path: Path, repeat: int, progress, task) -> dict:
    cmds = cli_commands(path, generic_path)
    runs: dict[str, list[dict]] = {k: [] for k in cmds}
    for _ in range(repeat):  # interleaved: a slow spell of the machine hits every command
        for k, cmd in cmds.items():
            progress.update(task, description=f"  {path.name}: {k}")
            runs[k].append(_run(cmd))
            progress.advance(task)
    out = {}
    for k, rs in runs.items():
        out[k] = {f: statistics.median(r[f] for r in rs) for f in ("wall_s", "cpu_s", "rss_mb")}
        out[k]["runs"] = len(rs)
        out[k]["cmd"] = (
            " ".join(cmds[k])
            .replace(str(BIN) + os.sep, "")
            .replace(str(generic_path), "FILE.generic.mlir")
            .replace(str(path), "FILE")
        )
    base = out["neuron-opt"]
    ratios = {}
    for f in ("wall_s", "cpu_s"):
        tag = f.split("_")[0]
        ratios[f"matmult/no-pass {tag}"] = out["neuron-opt matmult"][f] / base[f]
        ratios[f"all/no-pass {tag}"] = out["neuron-opt all"][f] / base[f]
        ratios[f"no-pass/xdsl-opt generic {tag}"] = base[f] / out["xdsl-opt generic"][f]
        ratios[f"matmult/xdsl-opt generic {tag}"] = (
            out["neuron-opt matmult"][f] / out["xdsl-opt generic"][f]
        )
        ratios[f"no-pass/xdsl-opt custom {tag}"] = base[f] / out["xdsl-opt custom"][f]
    return {"commands": out, "ratios": ratios}


def check_xdsl_opt_loads_nt() -> None:
    """xdsl-opt must find nt through the `xdsl.universe` entry point; say why if it does not."""
    probe = IR_DIR / "probe.mlir"
    probe.write_text(
        '"builtin.module"() ({\n'
        '  "func.func"() <{sym_name = "f", function_type = (tensor<2xf32>) -> ()}> ({\n'
        "  ^bb0(%a : tensor<2xf32>):\n"
        '    %0 = "nt.relu"(%a) : (tensor<2xf32>) -> tensor<2xf32>\n'
        '    "func.return"() : () -> ()\n'
        "  }) : () -> ()\n"
        "}) : () -> ()\n"
    )
    r = subprocess.run([str(BIN / "xdsl-opt"), str(probe)], capture_output=True, text=True)
    if r.returncode != 0:
        from importlib.metadata import entry_points

        eps = [f"{e.name} = {e.value}" for e in entry_points(group="xdsl.universe")]
        sys.exit(f"xdsl-opt does not load nt (entry points seen: {eps}):\n{r.stderr.strip()}")


# ---------------------------------------------------------------------------------------------
# Profile


def profile(path: Path, top: int) -> dict:
    """cProfile of parse, verify, the matmult pipeline with its verifies, and print."""
    text = path.read_text()
    ctx = make_context()
    prof = cProfile.Profile()
    gc.collect()
    gc.disable()
    try:
        prof.enable()
        module = parse_module(ctx, text, str(path))
        verify_module(module)
        for p in cast_pipeline("matmult", "bf16"):
            p.apply(ctx, module)
            verify_module(module)
        _print(module)
        prof.disable()
    finally:
        gc.enable()
    out = RESULTS / f"compile_speed_{path.stem}.prof"
    prof.dump_stats(out)
    st = pstats.Stats(prof)
    total = st.total_tt
    ours = str(ROOT) + os.sep
    venv = str(ROOT / ".venv")
    rows = []
    for (file, line, fn), (cc, nc, tt, ct, _) in st.stats.items():
        if file.startswith(ours) and not file.startswith(venv):
            rows.append(
                {
                    "where": f"{Path(file).relative_to(ROOT)}:{line}({fn})",
                    "calls": nc,
                    "tottime_s": tt,
                    "cumtime_s": ct,
                }
            )
    xdsl_rows = []
    for (file, line, fn), (cc, nc, tt, ct, _) in st.stats.items():
        if "site-packages" in file:
            short = file.split("site-packages" + os.sep, 1)[1]
            xdsl_rows.append(
                {"where": f"{short}:{line}({fn})", "calls": nc, "tottime_s": tt, "cumtime_s": ct}
            )
    res = {
        "file": str(path.relative_to(ROOT)),
        "total_s": total,
        "prof": str(out.relative_to(ROOT)),
        "ours_by_cumtime": sorted(rows, key=lambda r: -r["cumtime_s"])[:top],
        "ours_by_tottime": sorted(rows, key=lambda r: -r["tottime_s"])[:top],
        "library_by_tottime": sorted(xdsl_rows, key=lambda r: -r["tottime_s"])[:top],
    }
    for key, title in (
        ("ours_by_cumtime", "our code, by cumulative time"),
        ("ours_by_tottime", "our code, by own time"),
        ("library_by_tottime", "libraries (xdsl, ...), by own time"),
    ):
        tab = Table(
            title=f"profile of {path.name} (matmult pipeline, {total:.2f} s under cProfile): {title}"
        )
        for c in ("function", "calls", "own s", "cum s", "cum %"):
            tab.add_column(c, justify="left" if c == "function" else "right")
        for r in res[key]:
            tab.add_row(
                r["where"],
                str(r["calls"]),
                f"{r['tottime_s']:.3f}",
                f"{r['cumtime_s']:.3f}",
                f"{100 * r['cumtime_s'] / total:.0f}",
            )
        console.print(tab)
    return res


# ---------------------------------------------------------------------------------------------
# Report


def _fmt_rate(n: int, s: float) -> str:
    return f"{n / s / 1000:.1f}k" if s > 0 else "-"


def report(rows: list[dict]) -> None:
    tab = Table(
        title="in process: wall s / CPU s (k ops/s by CPU time, over the ops the phase reads); gc off"
    )
    tab.add_column("phase")
    for r in rows:
        tab.add_column(f"{r['in_process']['input_ops']} ops", justify="right")

    def cell(s: float, c: float | None, n: int | None) -> str:
        if c is None:  # figures written before CPU time was recorded
            return f"{s:.2f}" + (f" ({_fmt_rate(n, s)})" if n else "")
        return f"{s:.2f} / {c:.2f}" + (f" ({_fmt_rate(n, c)})" if n else "")

    phases = [
        ("parse", "roundtrip", "parse"),
        ("verify", "roundtrip", "verify"),
        ("print", "roundtrip", "print"),
        ("print generic", "roundtrip", "print_generic"),
    ]
    for mode in MODES:
        phases += [
            (f"{mode}: {k}", mode, k)
            for k in ("auto-cast", "canonicalize-casts", "preserve-io", "verify_after", "print")
        ]
        phases.append((f"{mode}: passes + verifies", mode, None))
    for label, part, key in phases:
        cells = []
        for r in rows:
            ip, n = r["in_process"], r["in_process"]["input_ops"]
            t = ip[part] if part == "roundtrip" else ip[part]["times"]
            if key is None:
                s = sum(
                    v for k, v in t.items() if not k.startswith("print") and not k.endswith("_cpu")
                )
                c = (
                    sum(v for k, v in t.items() if not k.startswith("print") and k.endswith("_cpu"))
                    or None
                )
            else:
                s, c = t[key], t.get(key + "_cpu")
            # ops read: the input for parse..passes, the pass output for the final print
            reads = ip[part]["output_ops"] if (part != "roundtrip" and key == "print") else n
            cells.append(cell(s, c, reads if key != "verify_after" else None))
        tab.add_row(label, *cells)
    tab.add_row(
        "output ops (matmult / all)",
        *(
            f"{r['in_process']['matmult']['output_ops']} / {r['in_process']['all']['output_ops']}"
            for r in rows
        ),
    )
    console.print(tab)
    if "cli" not in rows[0]:
        return

    tab = Table(title="CLI, subprocess (median wall s / child CPU s / peak RSS MB)")
    tab.add_column("command")
    for r in rows:
        tab.add_column(f"{r['ops']} ops", justify="right")
    for k in rows[0]["cli"]["commands"]:
        tab.add_row(
            rows[0]["cli"]["commands"][k]["cmd"],
            *(
                f"{c['wall_s']:.2f} / {c['cpu_s']:.2f} / {c['rss_mb']:.0f}"
                for c in (r["cli"]["commands"][k] for r in rows)
            ),
        )
    console.print(tab)

    tab = Table(
        title=f"ratios (wall / CPU); target matmult/no-pass <= {TARGET} at 100k, {WANTED} wanted"
    )
    tab.add_column("ratio")
    for r in rows:
        tab.add_column(f"{r['ops']} ops", justify="right")
    names = sorted(
        {k.rsplit(" ", 1)[0] for k in rows[0]["cli"]["ratios"]},
        key=lambda k: list(rows[0]["cli"]["ratios"]).index(k + " wall"),
    )
    for k in names:
        tab.add_row(
            k,
            *(
                f"{r['cli']['ratios'][k + ' wall']:.2f} / {r['cli']['ratios'][k + ' cpu']:.2f}"
                for r in rows
            ),
        )
    console.print(tab)

    def verdict(m: float) -> str:
        return (
            f"meets {WANTED}"
            if m <= WANTED
            else f"meets {TARGET}"
            if m <= TARGET
            else f"MISSES {TARGET}"
        )

    for r in rows:
        w, c = r["cli"]["ratios"]["matmult/no-pass wall"], r["cli"]["ratios"]["matmult/no-pass cpu"]
        line = f"{r['ops']} ops: --auto-cast=matmult / no pass = {w:.2f} wall ({verdict(w)}), {c:.2f} CPU ({verdict(c)})"
        # Wall well above CPU means the runs waited for a core: other jobs were running, and the
        # CPU ratio is then the better estimate of the ratio on a quiet machine.
        busy = [k for k, v in r["cli"]["commands"].items() if v["wall_s"] > 1.15 * v["cpu_s"]]
        if busy:
            line += (
                f"; machine busy during {', '.join(busy)} (wall > 1.15x CPU): trust the CPU ratio"
            )
        console.print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated op counts")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="CLI runs per command (median); sizes above 50k run once, they take minutes",
    )
    ap.add_argument("--type-alias", action="store_true", help="write `!alias = tensor<...>` types")
    ap.add_argument(
        "--profile", type=int, metavar="N", help="also cProfile the N-op module (matmult)"
    )
    ap.add_argument("--top", type=int, default=25, help="rows per profile table")
    ap.add_argument("--no-cli", action="store_true", help="skip the subprocess runs")
    ap.add_argument("--json", default=str(RESULTS / "compile_speed.json"))
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="print the tables from --json (e.g. after sizes were run apart) and exit",
    )
    args = ap.parse_args()
    if args.report_only:
        report(json.loads(Path(args.json).read_text())["sizes"])
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    IR_DIR.mkdir(parents=True, exist_ok=True)
    if not args.no_cli:
        check_xdsl_opt_loads_nt()

    rows = []
    suffix = "_alias" if args.type_alias else ""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as prog:
        for n in sizes:
            repeat = 1 if n > 50_000 else args.repeat
            task = prog.add_task(f"{n} ops", total=3 + (0 if args.no_cli else 5 * repeat))
            text, info = build_module(n, args.type_alias)
            path = IR_DIR / f"nt_{n}{suffix}.mlir"
            generic = IR_DIR / f"nt_{n}{suffix}.generic.mlir"
            path.write_text(text)
            prog.update(task, advance=1, description=f"  {path.name}: in process")
            ip = in_process(path, generic)
            prog.advance(task, 2)
            row = {
                **info,
                "file": str(path.relative_to(ROOT)),
                "bytes": len(text),
                "generic_bytes": generic.stat().st_size,
                "in_process": ip,
            }
            if not args.no_cli:
                row["cli"] = cli(path, generic, repeat, prog, task)
            rows.append(row)
            prog.update(task, description=f"{n} ops: done")
    report(rows)

    prof = None
    if args.profile:
        text, _ = build_module(args.profile, args.type_alias)
        path = IR_DIR / f"nt_{args.profile}{suffix}.mlir"
        path.write_text(text)
        prof = profile(path, args.top)

    data = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "xdsl": version("xdsl"),
            "neuron-opt": version("neuron-opt"),
        },
        "module": {
            "layers_of": OPS_PER_LAYER,
            "shapes": {"seq": S, "hidden": D, "heads": H, "ffn": F},
            "type_alias": args.type_alias,
        },
        "target": {"matmult/no-pass": TARGET, "wanted": WANTED},
        "sizes": rows,
        "profile": prof,
    }
    out = Path(args.json)
    if out.exists():  # keep figures of sizes not rerun (e.g. the 100k run made once)
        try:
            old = json.loads(out.read_text())
            if old.get("module", {}).get("type_alias") == args.type_alias:
                have = {r["ops"] for r in rows}
                data["sizes"] = sorted(
                    [r for r in old.get("sizes", []) if r["ops"] not in have] + rows,
                    key=lambda r: r["ops"],
                )
                if prof is None:
                    data["profile"] = old.get("profile")
        except (json.JSONDecodeError, KeyError):
            pass
    write_json(out, data)


if __name__ == "__main__":
    main()
