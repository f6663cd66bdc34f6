"""The GPU lease: parallel grid jobs on one machine each take a different GPU, and a killed job's
GPU is free again (flock locks die with their process). No GPU needed: the lease is on ids."""

import subprocess
import sys

import pytest

from mollify import device


@pytest.fixture
def leases(monkeypatch):
    held: list = []
    monkeypatch.setattr(device, "_leases", held)
    yield held
    for lock in held:
        lock.close()


def test_jobs_get_different_gpus_and_a_killed_jobs_gpu_is_free_again(tmp_path, leases):
    ids = ["3", "5"]  # physical ids, as CUDA_VISIBLE_DEVICES lists them
    other = subprocess.Popen(
        [sys.executable, "-c", f"from mollify.device import lease_gpu; print(lease_gpu({ids!r}, {str(tmp_path)!r}), flush=True); "
                               "import time; time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "0"  # the first job takes the first free GPU
        assert device.lease_gpu(ids, tmp_path) == 1  # this one the other GPU
        assert (tmp_path / "gpu3.lock").exists() and (tmp_path / "gpu5.lock").exists()
    finally:
        other.kill()
        other.wait()
    assert device.lease_gpu(ids, tmp_path) == 0  # GPU 3 came free with the killed process
    assert len(leases) == 2


def test_a_third_job_waits_for_a_free_gpu(tmp_path, leases, monkeypatch):
    ids = ["0", "1"]
    assert [device.lease_gpu(ids, tmp_path), device.lease_gpu(ids, tmp_path)] == [0, 1]

    def free_one(seconds):  # the first wait: the job holding GPU 1 ends
        leases.pop().close()

    monkeypatch.setattr(device.time, "sleep", free_one)
    assert device.lease_gpu(ids, tmp_path) == 1


def test_one_visible_gpu_needs_no_lease(tmp_path, leases):
    assert device.lease_gpu(["7"], tmp_path) == 0
    assert not leases and not list(tmp_path.iterdir())


def test_machine_info_names_the_cpu_kernels_threads_and_torch(monkeypatch):
    import torch

    from mollify.device import PINNING_ENV, machine_info
    from mollify.report.machines import machine_text, machines_section

    for name in PINNING_ENV:  # the suite's workers may pin their threads
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    info = machine_info(torch.device("cpu"))
    assert info["cpu"] and info["torch"] == str(torch.__version__) and type(info["torch"]) is str and info["threads"] == torch.get_num_threads()
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and info["pinned"] == {"ATEN_CPU_CAPABILITY": "default"}
    assert "gpu" not in info
    gpu = {**info, "gpu": "NVIDIA H100", "cuda": "12.8", "driver": "570.1"}
    assert machine_text(gpu).endswith("(pinned: ATEN_CPU_CAPABILITY=default); GPU NVIDIA H100 (CUDA 12.8, driver 570.1)")
    # one line per distinct machine, with the roles it played
    section = machines_section({("demo", "a"): {"machine": {"train": gpu, "evaluate": info}},
                                ("demo", "b"): {"machine": {"train": gpu, "evaluate": info}}})
    assert section.count("\n- ") == 2 and "NVIDIA H100 (CUDA 12.8, driver 570.1) (train)" in section
    assert machines_section({("demo", "a"): {}}) == ""
