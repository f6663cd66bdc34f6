"""The results page's machine lines: which CPU (kernel level, threads, torch) and GPU trained and
evaluated the runs, from the `machine` records of mollify.device.machine_info."""

from __future__ import annotations


def machine_text(info: dict[str, object]) -> str:
    """One line for the report: CPU model, kernel level, threads, torch (and the GPU on CUDA)."""
    text = f"{info.get('cpu')}, torch {info.get('torch')} CPU kernels {info.get('cpu_capability')}, {info.get('threads')} threads"
    if info.get("pinned"):
        text += " (pinned: " + ", ".join(f"{k}={v}" for k, v in dict(info["pinned"]).items()) + ")"
    if info.get("gpu"):
        text += f"; GPU {info['gpu']} (CUDA {info.get('cuda')}, driver {info.get('driver')})"
    return text


def machines_section(summaries: dict) -> str:
    """The results page's list of the machines that trained and evaluated the runs of `summaries`
    (each summary's `machine`: {"train": info, "evaluate": info}), each distinct one once."""
    machines: dict[str, set[str]] = {}
    for summary in summaries.values():
        for role, info in summary.get("machine", {}).items():
            if info:
                machines.setdefault(machine_text(info), set()).add(role)
    if not machines:
        return ""
    lines = [f"- {text} ({' and '.join(sorted(roles))})" for text, roles in machines.items()]
    return "Machines (CPU model, torch's CPU kernel level, threads, torch; GPU and driver on CUDA):\n" + "\n".join(lines) + "\n"
