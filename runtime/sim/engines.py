"""The event loop: in-order engines and DMA queues, semaphores, ports, DMA engines.

docs/design.md's issue model: a stream issues its next instruction max(MIN_II, cost) after the
previous one (DMA: bytes / bandwidth), once its waits are met and the shared port is free;
the instruction completes after its access latency (DMA: after its fixed cost and data), and
its signals land SEMAPHORE_LATENCY later. Streams are advanced in order of their next start
time with a heap, so the instruction executed next is always the earliest one that can start:
its numerics then see exactly the memory a hardware run would, for a race-free kernel.
"""

from __future__ import annotations

import heapq
from bisect import insort

from neuron_opt.diagnostics import location_of
from neuron_opt.dialects import ncv2
from neuron_opt.dialects.ncv2_cost import DMA_FIXED_NS
from neuron_opt.dialects.nisa import slices_meet
from neuron_opt.runtime.sim.decode import Program
from neuron_opt.runtime.sim.errors import Fault, SimError


class Timeline:
    """What a run produced besides memory: per-instruction times and per-stream totals."""

    def __init__(self, nstreams: int):
        self.events: list[tuple] = []  # (stream, instr, start, end) for the trace
        self.busy = [0.0] * nstreams
        self.makespan = 0.0
        self.flops = 0
        self.dma_bytes = 0
        self.executed = 0


def run(program: Program, numerics: bool, record: bool = True) -> Timeline:
    program.reset()
    streams = program.streams
    S = len(streams)
    code = [s.instrs for s in streams]
    length = [len(c) for c in code]
    pos = [0] * S
    next_issue = [0.0] * S
    version = [0] * S
    nsem = len(program.semaphores)
    sig_times: list[list[float]] = [[] for _ in range(nsem)]
    watchers: list[set[int]] = [set() for _ in range(nsem)]
    port_until = [0.0, 0.0, 0.0, 0.0]
    dma_free = [0.0] * ncv2.DMA_ENGINES
    tl = Timeline(S)
    busy = tl.busy
    events = tl.events
    heap: list[tuple[float, int, int, int]] = []
    push = heapq.heappush
    pop = heapq.heappop
    counter = 0
    # (memory, 4 KiB bucket) -> accesses (done, stream, instr, region) maybe still in flight
    inflight: dict[tuple, list] = {}

    def candidate(s: int) -> float | None:
        ins = code[s][pos[s]]
        t = next_issue[s]
        for sem, n in ins.waits:
            times = sig_times[sem]
            if len(times) < n:
                return None
            if times[n - 1] > t:
                t = times[n - 1]
        for slot in ins.pw:
            if port_until[slot] > t:
                t = port_until[slot]
        return t

    def schedule(s: int) -> None:
        nonlocal counter
        ins = code[s][pos[s]]
        for sem, _ in ins.waits:
            watchers[sem].add(s)
        t = candidate(s)
        version[s] += 1
        if t is not None:
            counter += 1
            push(heap, (t, counter, s, version[s]))

    for s in range(S):
        if length[s]:
            schedule(s)

    makespan = 0.0
    while heap:
        t, _, s, v = pop(heap)
        if v != version[s]:
            continue
        ins = code[s][pos[s]]
        # Ports and signals may have moved since this entry was pushed: recheck lazily.
        now = candidate(s)
        if now is None:
            version[s] += 1
            continue
        if now > t:
            counter += 1
            version[s] += 1
            push(heap, (now, counter, s, version[s]))
            continue
        start = t
        try:
            if ins.pre is not None:
                ins.pre()
            if numerics and ins.fn is not None:
                _check_races(ins, s, start, inflight, streams)
                ins.fn()
        except Fault as f:
            st = streams[s]
            raise SimError(
                f"{st.label} instruction {ins.index} ({ins.op.name}): operand {f.operand}: "
                f"{f.message}",
                location_of(ins.op),
            ) from None
        if ins.dma_engine >= 0:
            e = ins.dma_engine
            data_start = start + DMA_FIXED_NS + ins.setup
            if dma_free[e] > data_start:
                data_start = dma_free[e]
            done = data_start + ins.busy
            dma_free[e] = done
            tl.dma_bytes += ins.nbytes
        else:
            done = start + ins.done
            for slot in ins.ps:
                port_until[slot] = start + ins.cost
        if numerics:
            for region in ins.regions:
                entry = (done, s, ins, region)
                for key in region[8]:
                    lst = inflight.get(key)
                    if lst is None:
                        inflight[key] = [entry]
                    else:
                        lst.append(entry)
        busy[s] += ins.busy
        tl.flops += ins.flops
        next_issue[s] = start + ins.busy
        if done > makespan:
            makespan = done
        if record:
            events.append((s, ins, start, done))
        if ins.waits:
            for sem, _ in ins.waits:
                watchers[sem].discard(s)
        if ins.signals:
            at = done + ins.sig_delay
            woken = set()
            for sem in ins.signals:
                insort(sig_times[sem], at)
                woken |= watchers[sem]
            woken.discard(s)
            pos[s] += 1
            if pos[s] < length[s]:
                schedule(s)
            for w in woken:
                schedule(w)
        else:
            pos[s] += 1
            if pos[s] < length[s]:
                schedule(s)
    tl.executed = sum(pos)
    tl.makespan = makespan
    if tl.executed != sum(length):
        raise SimError(_deadlock(program, pos, sig_times))
    return tl


def _check_races(ins, s: int, start: float, inflight: dict, streams) -> None:
    """An access overlapping one of another stream's in-flight accesses, where either
    writes, is a race: no semaphore orders the two (an engine's own stream is ordered).
    Accesses of one buffer overlap when they share an element; of aliasing buffers, when
    their boxes overlap."""
    for w, mem, p0, p1, b0, b1, name, text, keys, buf, sl in ins.regions:
        for key in keys:
            lst = inflight.get(key)
            if not lst:
                continue
            live = [e for e in lst if e[0] > start]
            inflight[key] = live
            for done, other, oins, (ow, _, q0, q1, c0, c1, _, otext, _, obuf, osl) in live:
                if (
                    other != s
                    and (w or ow)
                    and p0 < q1
                    and q0 < p1
                    and b0 < c1
                    and c0 < b1
                    and (buf != obuf or slices_meet(sl, osl))
                ):
                    verb = "writes" if w else "reads"
                    overb = "writing" if ow else "reading"
                    raise Fault(
                        name,
                        f"{verb} {text} while {streams[other].label} instruction {oins.index} "
                        f"({oins.op.name}) is still {overb} {otext} (until {done / 1000:.3f} us): "
                        "a semaphore wait is missing",
                    )


def _deadlock(program: Program, pos: list[int], sig_times) -> str:
    lines = []
    for s, st in enumerate(program.streams):
        if pos[s] >= len(st.instrs):
            continue
        ins = st.instrs[pos[s]]
        unmet = [
            f"@{program.semaphores[sem]} >= {n}, value {len(sig_times[sem])}"
            for sem, n in ins.waits
            if len(sig_times[sem]) < n
        ]
        where = location_of(ins.op)
        at = f" at {where}" if where else ""
        lines.append(
            f"{st.label} instruction {ins.index} ({ins.op.name}){at} waits for {'; '.join(unmet)}"
        )
    return "deadlock: waits that can never be met: " + " | ".join(lines)
