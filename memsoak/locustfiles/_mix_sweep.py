"""Opt-in load shape that sweeps the action mix, so memory growth can be attributed per action.

With a fixed mix, sessions, messages and reads grow in lock-step and a regression of memory on the
per-action counts cannot tell them apart. This shape cycles through phases that each skew the mix:
session churn (create and end, one message), long talks (many messages, nothing ended), read-back
heavy sessions, streaming, and the default mix. Locust uses the first shape it finds in any loaded
file, so the shape lives in a `_` file that `-f memsoak/locustfiles` skips; opt in with
`locust -f memsoak/locustfiles,memsoak/locustfiles/_mix_sweep.py`. It honours -u, -r and -t (use_common_options);
`--sweep-phase-s` sets each phase's length.
"""
from __future__ import annotations

from typing import Any

from locust import LoadTestShape, events

from memsoak.locustfiles import chat
from memsoak.knobs import Knob


class ChurnUser(chat.ChatUser):
    """Session churn: create, one message, always end."""
    profile = {"messages_min": 1, "messages_max": 1, "end_ratio": 1.0, "read_back_ratio": 0.0}


class TalkUser(chat.ChatUser):
    """Long talks: many messages, never read back or ended."""
    profile = {"messages_min": 8, "messages_max": 14, "end_ratio": 0.0, "read_back_ratio": 0.0}


class ReadBackUser(chat.ChatUser):
    """Read-back heavy: short sessions that are always read back, half ended."""
    profile = {"messages_min": 1, "messages_max": 2, "end_ratio": 0.5, "read_back_ratio": 1.0}


# (phase name, user class names); the names are resolved against the loaded classes at each tick.
PHASES: list[tuple[str, list[str]]] = [
    ("default", ["ChatUser", "StreamUser"]),
    ("churn", ["ChurnUser"]),
    ("talk", ["TalkUser"]),
    ("read", ["ReadBackUser"]),
    ("stream", ["StreamUser"]),
]


SWEEP_PHASE = Knob("sweep_phase_s", float, 60.0, "Length of each phase of the mix-sweep shape, seconds")
SWEEP_KNOBS: tuple[Knob, ...] = (SWEEP_PHASE,)


@events.init_command_line_parser.add_listener
def _register(parser: Any, **_kwargs: Any) -> None:
    parser.add_argument(SWEEP_PHASE.flag, type=SWEEP_PHASE.type, default=SWEEP_PHASE.default,
                        env_var=SWEEP_PHASE.env_var, help=f"{SWEEP_PHASE.help} (default {SWEEP_PHASE.default:g})",
                        include_in_web_ui=True)


class MixSweepShape(LoadTestShape):
    """Constant user count; the user classes change every `--sweep-phase-s` seconds.

    Locust's dispatcher keeps running users when only the class list changes at the same count, so
    each phase starts with one tick at zero users (the previous phase's users stop) before ramping
    its own classes up.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_phase = -1

    use_common_options = True

    @staticmethod
    def phase_index(elapsed_s: float, phase_s: float) -> int:
        return int(elapsed_s // max(phase_s, 1.0))

    def tick(self) -> tuple[int, float, list] | None:
        options = self.runner.environment.parsed_options
        elapsed = self.get_run_time()
        if options.run_time and elapsed > options.run_time:
            return None
        index = self.phase_index(elapsed, float(getattr(options, SWEEP_PHASE.name, SWEEP_PHASE.default)))
        _name, class_names = PHASES[index % len(PHASES)]
        by_name = self.runner.environment.user_classes_by_name
        classes = [by_name[n] for n in class_names if n in by_name] or list(by_name.values())
        users, rate = int(options.num_users or 1), float(options.spawn_rate or 1)
        if index != self.last_phase and self.last_phase >= 0:
            self.last_phase = index
            return 0, max(rate, float(users)), classes  # drain the previous phase's users
        self.last_phase = index
        return users, rate, classes
