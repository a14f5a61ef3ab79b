"""`make soak`: the whole portal, started as `make loadtest` starts it, under a steady mixed load
for SOAK_SECONDS (30 minutes by default), against reliability.md's R8: RSS grows under 10 % in
every process, open file descriptors stay flat, and no process is left a zombie.

It looks for leaks, not capacity, so the load is moderate: 4 playground clients with a short
think time, a poller over the dashboards, the insights pages and the playground history, an LLM
stream every 15 s when the demo LLM is installed, and in every 5 minutes the iris endpoint
scaled to 2 instances and back to 1 through the wizard, which replaces its model processes.
Every 30 s it reads /proc for every process of the portal and its descendants (gunicorn master
and workers, the Celery worker and its pool, beat, the runtime and its model processes): RSS,
open FDs, threads and state.

The baseline is the first sample at 20 % of the period (6 minutes of 30: caches are filled, the
pool and the model processes have started); the end is the last sample. A process that starts
after the baseline (a model process replaced by a scale change, a new warm spare) or ends
before the end is listed as such, without a verdict: it is replaced by design, and whether
replacing it leaks shows in its parent's FDs and RSS and in the zombie count.

It prints a table and writes every sample to soak-samples.csv in its workspace, which it keeps
with the logs so a slope can be checked. It is a benchmark, not a test.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import requests

from bench.loadtest import (
    PASSWORD,
    SETUP,
    Portal,
    Run,
    invoke,
    llm_streams,
    poll_dashboards,
    row,
    signed_in,
)

SAMPLE_SECONDS = 30
THINK_SECONDS = 0.5
STREAM_EVERY_SECONDS = 15
SCALE_EVERY_SECONDS = 300
RSS_GROWTH_GOAL = 0.10
# Each web worker can hold a keep-alive connection of each of the load's 7 sessions at a
# sample or not, and the runtime one to each model process: more than that is no noise.
FD_TOLERANCE = 8
END = """
import json
from endpoints.models import Deployment
from playground.models import Invocation
print(json.dumps({"deployments": [[d.action, d.step, d.last_error]
                                  for d in Deployment.objects.order_by("pk")],
                  "invocations": Invocation.objects.count()}))
"""


# -- reading /proc ------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process on the machine."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # ended since the scan
        state, parent = stat.rsplit(")", 1)[1].split()[:2]  # the name may hold spaces or ")"
        table[int(entry.name)] = (int(parent), state)
    return table


def start_time(pid: int) -> int:
    """In clock ticks since boot: with the pid, it names a process even if the pid is reused."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def measure(pid: int) -> tuple[int, int, int]:
    """RSS in KiB, open FDs and threads; a zombie has no RSS and no FDs left."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss = int(status.get("VmRSS", "0 kB").split()[0])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), int(status["Threads"])


def describe(root: str, depth: int, pid: int) -> str:
    """What a process is, from its place in the tree and its command line."""
    if depth == 0:
        return root
    command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    if "runtime.container" in command:
        image = command[command.index("--image") + 1]
        if "--standby" in command:
            return f"model {image} spare"
        return f"model {image} {Path(command[command.index('--model-dir') + 1]).name}"
    if depth == 1 and root in ("web", "worker"):
        return {"web": "web worker", "worker": "worker pool"}[root]
    return f"{root} child {Path(command[0]).name}"


@dataclass
class Seen:
    """One process of the portal and its samples: (elapsed s, RSS KiB, FDs, threads)."""

    name: str
    pid: int
    root: bool
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)

    def at(self, elapsed: float) -> tuple[float, int, int, int] | None:
        return next((sample for sample in self.samples if sample[0] == elapsed), None)


class Sampler:
    """Samples every descendant of this process, i.e. everything the portal started."""

    def __init__(self, portal: Portal, path: Path) -> None:
        self.roots = {process.pid: name for name, process in portal.processes.items()}
        self.seen: dict[tuple[int, int], Seen] = {}
        self.times: list[float] = []
        self.zombies: list[int] = []
        self.file = path.open("w", newline="")
        self.csv = csv.writer(self.file)
        self.csv.writerow(["elapsed_s", "process", "pid", "ppid", "state", "rss_kib", "fds",
                           "threads"])  # fmt: skip

    def sample(self, elapsed: float) -> None:
        table = process_table()
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in table.items():
            children.setdefault(parent, []).append(pid)
        pending = [(pid, self.roots.get(pid, "?"), 0) for pid in children.get(os.getpid(), [])]
        zombies = 0
        while pending:
            pid, root, depth = pending.pop()
            pending += [(child, root, depth + 1) for child in children.get(pid, [])]
            state = table[pid][1]
            zombies += state == "Z"
            try:
                key = (pid, start_time(pid))
                if key not in self.seen:
                    self.seen[key] = Seen(describe(root, depth, pid), pid, depth == 0)
                rss, fds, threads = measure(pid)
            except (OSError, ValueError, IndexError):
                continue  # it ended between the scan and now
            if state != "Z":  # a zombie has ended: counted, never compared with its baseline
                self.seen[key].samples.append((elapsed, rss, fds, threads))
            self.csv.writerow([f"{elapsed:.0f}", self.seen[key].name, pid, table[pid][0], state,
                               rss, fds, threads])  # fmt: skip
        self.times.append(elapsed)
        self.zombies.append(zombies)
        self.file.flush()


# -- the load -----------------------------------------------------------------------------


class DetailedRun(Run):
    """A Run that keeps the message of the exception being handled beside its name: a rare
    error in a long soak needs more than "ConnectionError" to be traced."""

    def add(self, started: float, error: str = "") -> None:
        problem = sys.exc_info()[1]
        if error and problem is not None:
            error = f"{error}: {problem}"[:300]
        super().add(started, error)


class WizardForm(HTMLParser):
    """The fields a browser submits from a page's wizard form, as the page fills them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.inside = False
        self.select: dict | None = None
        self.textarea: str | None = None
        self.text = ""
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.inside = "wizard-" in attributes.get("class", "")
        if not self.inside:
            return
        name = attributes.get("name", "")
        kind = attributes.get("type", "text")
        if tag == "input" and name and kind not in ("submit", "button", "reset", "file"):
            if kind not in ("checkbox", "radio") or "checked" in attributes:
                self.fields.append(
                    (name, attributes.get("value", "on" if kind == "checkbox" else ""))
                )
        elif tag == "select" and name:
            self.select = {"name": name, "first": None, "chosen": False}
        elif tag == "option" and self.select is not None:
            value = attributes.get("value", "")
            if self.select["first"] is None:
                self.select["first"] = value
            if "selected" in attributes:
                self.fields.append((self.select["name"], value))
                self.select["chosen"] = True
        elif tag == "textarea" and name:
            self.textarea, self.text = name, ""

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self.select is not None:
            if not self.select["chosen"] and self.select["first"] is not None:
                self.fields.append((self.select["name"], self.select["first"]))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self.fields.append((self.textarea, self.text.removeprefix("\n")))
            self.textarea = None


def scale(portal: Portal, session: requests.Session, endpoint: int, instances: int) -> str:
    """Change the endpoint to `instances` instances through the wizard's update, keeping every
    other value as the steps show it. "" once the update is requested, else what went wrong."""
    try:
        page = session.get(f"{portal.url}/endpoints/{endpoint}/update/", timeout=30)
        for _ in range(30):
            fields = [
                (name, str(instances) if name.endswith("-instance_count") else value)
                for name, value in WizardForm(page.text).fields
            ]
            answer = session.post(page.url, data=fields, allow_redirects=False, timeout=30)
            if answer.status_code != 302:
                return f"scale to {instances}: {page.url} answered HTTP {answer.status_code}"
            location = urljoin(page.url, answer.headers["Location"])
            if "/endpoints/new/" not in location:
                return ""
            if location == page.url:  # the review says the last change is still deploying
                time.sleep(5)
            page = session.get(location, timeout=30)
    except requests.RequestException as error:
        return f"scale to {instances}: {type(error).__name__}: {error}"
    return f"scale to {instances}: the wizard did not reach its end"


def playground_client(
    portal: Portal, session: requests.Session, endpoint: int, run: Run, stop: threading.Event
) -> None:
    while not stop.is_set():
        invoke(portal, session, endpoint, run)
        stop.wait(THINK_SECONDS)


def streams_now_and_then(
    portal: Portal, session: requests.Session, endpoint: int, run: Run, stop: threading.Event
) -> None:
    while not stop.wait(STREAM_EVERY_SECONDS):
        started = time.perf_counter()
        done, _ = llm_streams(portal, [session], endpoint, count=1)
        run.add(started, "" if done else "the stream did not end with done")


def scale_now_and_then(
    portal: Portal, session: requests.Session, endpoint: int, run: Run, stop: threading.Event
) -> None:
    """Out to 2 instances a third into each period and back to 1 two thirds in, so that the
    baseline (at 20 %) and the end (a whole number of periods) both see 1 instance."""
    began = time.monotonic()
    for cycle in itertools.count():
        for fraction, instances in ((1 / 3, 2), (2 / 3, 1)):
            due = began + (cycle + fraction) * SCALE_EVERY_SECONDS
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            started = time.perf_counter()
            run.add(started, scale(portal, session, endpoint, instances))


# -- the report ---------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def report(sampler: Sampler, baseline: float, end: float) -> tuple[int, int, int]:
    """Print a row per process; (processes judged, RSS met, FDs met)."""
    print(f"  {'process':<28} {'pid':>7} {'RSS MiB base':>12} {'end':>7} {'growth':>7} "
          f"{'FDs':>9} {'threads':>9}   verdict")  # fmt: skip
    judged = rss_met = fds_met = 0
    alive = [seen for seen in sampler.seen.values() if seen.samples]  # not only ever a zombie
    for seen in sorted(alive, key=lambda seen: (seen.name, seen.pid)):
        first, last = seen.samples[0], seen.samples[-1]
        start = seen.at(baseline) or first
        growth = ""  # only from the baseline: a process starting up grows by design
        if first[0] > baseline:
            verdict = f"started at {first[0]:.0f} s"
        elif last[0] < end:
            verdict = f"ended at {last[0]:.0f} s" + (" (exited: NOT MET)" if seen.root else "")
        else:
            judged += 1
            rss_ok = last[1] < start[1] * (1 + RSS_GROWTH_GOAL)
            fds_ok = last[2] - start[2] <= FD_TOLERANCE
            rss_met += rss_ok
            fds_met += fds_ok
            verdict = "met" if rss_ok and fds_ok else "NOT MET"
            growth = f"{(last[1] - start[1]) / start[1]:+.1%}" if start[1] else "?"
        print(
            f"  {seen.name:<28} {seen.pid:>7} {mib(start[1]):>12} {mib(last[1]):>7} "
            f"{growth:>7} {f'{start[2]}/{last[2]}':>9} {f'{start[3]}/{last[3]}':>9}   {verdict}"
        )
    return judged, rss_met, fds_met


def main() -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "1800"))
    portal = Portal()
    samples = portal.workspace / "soak-samples.csv"
    print(f"Endpoint Portal soak, {seconds / 60:.0f} min  (workspace {portal.workspace})")
    portal.up()
    stop = threading.Event()
    runs = {
        name: DetailedRun(name)
        for name in ("playground", "dashboards", "LLM streams", "scale changes")
    }
    try:
        output = portal.manage("shell", "-c", SETUP.format(users=6, password=PASSWORD)).strip()
        endpoints = json.loads(output.splitlines()[-1])
        iris = endpoints["iris"]
        admin, poller, *clients = (signed_in(portal, f"load{n}") for n in (0, 0, 1, 2, 3, 4, 5))
        streamer = clients.pop()
        pages = ["/", "/endpoints/", f"/endpoints/{iris}/", "/environments/", "/insights/",
                 f"/insights/endpoints/{iris}/", "/playground/history/"]  # fmt: skip

        def dashboards() -> None:
            runs["dashboards"] = poll_dashboards(portal, poller, pages, stop)

        load = [threading.Thread(target=dashboards)]
        load += [
            threading.Thread(
                target=playground_client, args=(portal, client, iris, runs["playground"], stop)
            )
            for client in clients
        ]
        load.append(
            threading.Thread(
                target=scale_now_and_then, args=(portal, admin, iris, runs["scale changes"], stop)
            )
        )
        if "chat" in endpoints:
            load.append(
                threading.Thread(
                    target=streams_now_and_then,
                    args=(portal, streamer, endpoints["chat"], runs["LLM streams"], stop),
                )
            )
        print(f"  up; {', '.join(endpoints)} deployed; {len(load)} load threads; sampling every "
              f"{SAMPLE_SECONDS} s into {samples.name}\n")  # fmt: skip
        sampler = Sampler(portal, samples)
        started = time.monotonic()
        for thread in load:
            thread.daemon = True  # Ctrl-C leaves without waiting for a request in flight
            thread.start()
        due = 0.0
        while True:
            time.sleep(max(0.0, started + due - time.monotonic()))
            sampler.sample(due)
            if due >= seconds:
                break
            due = min(seconds, due + SAMPLE_SECONDS)
        stop.set()
        for thread in load:
            thread.join()
        exited = [name for name, process in portal.processes.items() if process.poll() is not None]
        end = json.loads(portal.manage("shell", "-c", END).strip().splitlines()[-1])
        locked = portal.locked_lines()
    finally:
        stop.set()  # an interrupted soak too: the load ends with the portal
        portal.down()

    baseline = next(moment for moment in sampler.times if moment >= 0.2 * seconds)
    last = sampler.times[-1]
    print(f"  baseline: the sample at {baseline:.0f} s; end: the sample at {last:.0f} s; "
          f"{len(sampler.times)} samples\n")  # fmt: skip
    judged, rss_met, fds_met = report(sampler, baseline, last)
    requests_sent = sum(len(run.latencies) + len(run.errors) for run in runs.values())
    errors = sum(len(run.errors) for run in runs.values())
    print(f"\n  {'load':<24} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for run in runs.values():
        print(f"  {run.name:<24} {len(run.latencies) + len(run.errors):>9} {len(run.errors):>7} "
              f"{run.p(0.5):>8.1f} {run.p(0.95):>8.1f}")  # fmt: skip
    updates = [step for action, step, _ in end["deployments"] if action == "update"]
    counts = [
        sum(1 for seen in sampler.seen.values() if seen.at(moment)) for moment in sampler.times
    ]
    print("\n  goal" + " " * 56 + "measured")
    print(row("RSS grows < 10% (baseline to end, per process)", f"{rss_met}/{judged}",
              rss_met == judged and judged > 0))  # fmt: skip
    print(row(f"FDs flat (baseline to end, at most +{FD_TOLERANCE})", f"{fds_met}/{judged}",
              fds_met == judged and judged > 0))  # fmt: skip
    print(row("no zombie at any sample", f"max {max(sampler.zombies)}", not any(sampler.zombies)))
    print(row("no portal process exited", ", ".join(exited) or "none", not exited))
    print(row("requests: errors = 0", f"{errors} of {requests_sent}", not errors))
    print(row("scale changes deployed, none failed", f"{updates.count('done')} of {len(updates)}"
              f", {updates.count('failed')} failed", "failed" not in updates))  # fmt: skip
    print(row('no "database is locked" in any log (D6)', f"{locked}", locked == 0))
    at_baseline = counts[sampler.times.index(baseline)]
    print(f"\n  processes at baseline / end: {at_baseline} / {counts[-1]}; "
          f"invocations recorded: {end['invocations']}")  # fmt: skip
    for run in runs.values():
        if run.errors:
            print(f"  {run.name} errors:", sorted(set(run.errors))[:5])
    for action, step, error in end["deployments"]:
        if step != "done":
            print(f"  a deployment ({action}) is at {step} at the end: {error or 'no error'}")
    print(f"  samples: {samples}  (logs beside it)")


if __name__ == "__main__":
    main()
