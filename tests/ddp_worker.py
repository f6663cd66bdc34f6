"""Run under `torchrun --nproc_per_node 2` (or plainly, one process) by tests/training/test_distributed.py,
in a workspace with the demo data: train (1) a linear model without augmentation, whose DDP
update must equal the one-process update of the same global batch, and (2) the `baseline` recipe
through the train stage's code. Rank 0 writes the step counts, histories and linear weights as JSON."""

import json
import sys

import torch
import yaml
from torch.optim.optimizer import register_optimizer_step_pre_hook

from mollify.training import distributed
from mollify.augment import BatchRecipe
from mollify.config import parse_params
from mollify.device import Normalize
from mollify.training.run import train_method
from mollify.training.losses import soft_cross_entropy
from mollify.training.loop import TrainSettings, train

steps = {"linear": 0, "stage": 0}
part = ["linear"]
register_optimizer_step_pre_hook(lambda *_: steps.__setitem__(part[0], steps[part[0]] + 1))

torch.manual_seed(0)
images, labels = torch.randint(0, 256, (96, 3, 4, 4), dtype=torch.uint8), torch.randint(0, 10, (96,))
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10))
settings = TrainSettings(epochs=3, batch_size=32, lr=0.05, momentum=0.9, nesterov=False, weight_decay=5e-4,
                         warmup_epochs=0, seed=0)
linear = train(model, images, labels, lambda x, g: x, Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu")),
               BatchRecipe(10), soft_cross_entropy, settings, show_progress=False)

part[0] = "stage"
history = train_method(parse_params(yaml.safe_load(open("params.yaml"))), "demo", "baseline", show_progress=False)
if distributed.is_main():
    json.dump({"steps": steps, "linear_history": linear, "history": history,
               "linear_weights": [p.tolist() for p in model.parameters()]}, open(sys.argv[1], "w"))
