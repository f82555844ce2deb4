"""`ctxgen train` as processes: Ctrl-C saves a checkpoint and exits 130, two CPU processes through
`accelerate launch` (gloo, DDP) give the weights of one process with twice the accumulation, previews and logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from ctxgen.train.loop import train
from tests.train_helpers import ROOT, adapter_tensors, one_thread, open_tiny, train_root, write_config  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_ctrl_c_saves_a_checkpoint_and_exits_130(train_root):
    cfg = write_config(train_root, "interrupt.yaml", train={"max_steps": 10_000}, checkpoint={"every": 10_000})
    run = train_root / "interrupt"
    proc = subprocess.Popen([sys.executable, "-m", "ctxgen", "train", "sft", str(cfg), "--output", str(run)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = run / "log.jsonl", time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err[-2000:]
    steps = [int(d.name.split("-")[1]) for d in (run / "checkpoints").iterdir()]
    logged = len(log.read_text().splitlines())
    assert steps == [logged] and logged >= 2  # the last finished step was saved, no later one logged
    assert (run / "adapter" / f"contextgen_sft_{logged}.safetensors").is_file()
    assert "interrupted" in err and f"step {logged}: checkpoint" in err
    assert not list(run.rglob("*.part"))
    resumed = open_tiny(train_root, "interrupt", resume="auto", max_steps=logged + 1)
    assert resumed.start_step == logged and train(resumed).step == logged + 1


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_two_processes_match_one_with_twice_the_accumulation(train_root):
    cfg = write_config(train_root, "ddp.yaml", train={"max_steps": 2, "batch": 2})
    run = train_root / "ddp2"
    with socket.socket() as sock:  # a free port for gloo's rendezvous (other runs may hold the default one)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), "-m", "ctxgen",
           "train", "sft", str(cfg), "--output", str(run)]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained sft to step 2") == 1  # one process reports
    single = train(open_tiny(train_root, "ddp1", train={"max_steps": 2, "batch": 2}))
    two = adapter_tensors(run / "checkpoints" / "step-00000002" / "adapter.safetensors")
    one = adapter_tensors(single.run_dir / "checkpoints" / "step-00000002" / "adapter.safetensors")
    assert two.keys() == one.keys()
    assert all(torch.allclose(two[k], one[k], rtol=0, atol=1e-7) for k in one)  # observed: bit-identical
    assert max(float(v.abs().max()) for k, v in one.items() if "lora_B" in k) > 0


def test_previews_log_and_text_cache(train_root):
    """Previews at the start and every 2 steps; with a text cache CLIP and T5 leave memory and nothing changes."""
    small = ROOT / "examples" / "small.yaml"
    s = open_tiny(train_root, "previews", preview={"every": 2, "at_start": True, "scenes": [str(small)], "steps": 2},
                  train={"max_steps": 2}, data={"text_cache": "text-cache"})
    assert s.run.model.pipe.text_encoder_2 is None and s.text.unloaded
    assert len(list((train_root / "text-cache").rglob("*.safetensors"))) == 6 + 1 + 1  # prompts, "", the preview
    summary = train(s)
    pngs = sorted(p.name for p in (summary.run_dir / "previews" / "small").iterdir())
    assert pngs == ["step-00000000-seed-0.png", "step-00000002-seed-0.png"]
    plain = train(open_tiny(train_root, "no-cache", train={"max_steps": 2}))
    a, b = adapter_tensors(summary.adapter), adapter_tensors(plain.adapter)
    assert all(torch.equal(a[k], b[k]) for k in a)  # cached embeddings are the encoders' own
