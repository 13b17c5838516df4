"""Continual learning on Split Tiny-ImageNet: memory updates against sequential fine-tuning.

    python benchmarks/continual_bench.py              # writes results/continual.json
    python benchmarks/continual_bench.py --quick      # a subset; nothing written
    python benchmarks/continual_bench.py --synthetic  # no dataset needed; nothing written

The 200 classes are split into 10 tasks of 20 in a seeded random order.
After each task, every task seen so far is scored on its val images:

* task-incremental: the task id is given, so only that task's classes may
  be predicted (the memory searches the task's entries only; the head's
  logits are masked to the task's classes);
* class-incremental: any class seen so far may be predicted.

The memory learns a task by adding its training embeddings; the baseline
fine-tunes one linear head on each task in turn (no replay), and a linear
probe trained on all data at once is the joint upper bound.  Metrics from
the accuracy matrix ``A[t, j]`` (accuracy on task j after training task t):
final average accuracy ``mean_j A[T-1, j]``, average incremental accuracy
``mean_t mean_{j<=t} A[t, j]`` and forgetting ``mean_{j<T-1} max_{t<T-1}
(A[t, j] - A[T-1, j])``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import Split, command  # noqa: E402
from memory import VisualMemory  # noqa: E402
from router import Head, train_module  # noqa: E402


def task_order(classes: list[str], n_tasks: int, seed: int) -> list[list[str]]:
    """``n_tasks`` equal tasks of the classes, in a seeded random order."""
    order = np.random.default_rng(seed).permutation(sorted(classes)).tolist()
    size = len(order) // n_tasks
    return [order[t * size:(t + 1) * size] for t in range(n_tasks)]


def summarise(A: np.ndarray) -> dict[str, Any]:
    """Final average accuracy, average incremental accuracy and forgetting of ``A[t, j]``."""
    T = A.shape[0]
    final = float(A[T - 1].mean())
    incremental = float(np.mean([A[t, : t + 1].mean() for t in range(T)]))
    forgetting = float(np.mean([A[: T - 1, j].max() - A[T - 1, j] for j in range(T - 1)])) if T > 1 else 0.0
    return {"final_average_accuracy": round(final, 4), "average_incremental_accuracy": round(incremental, 4),
            "forgetting": round(forgetting, 4), "matrix": np.round(A, 4).tolist()}


def memory_learner(s: Split, tasks: list[list[str]], k: int) -> tuple[dict[str, Any], VisualMemory]:
    """Learn each task by adding its embeddings; returns both settings' matrices and the memory."""
    T = len(tasks)
    A_task, A_class = np.zeros((T, T)), np.zeros((T, T))
    mem = VisualMemory(s.X.shape[1], k=k, progress=False)
    qmask = [np.isin(s.qy, task) for task in tasks]
    t0 = time.perf_counter()
    add_s = 0.0
    for t, task in enumerate(tasks):
        rows = np.isin(s.y, task)
        a = time.perf_counter()
        # the task id is stored as the superclass, so a task-incremental query searches one task
        mem.add(s.X[rows], s.y[rows], superclass=f"task{t}", source=f"task{t}")
        add_s += time.perf_counter() - a
        for j in range(t + 1):
            q, truth = s.Q[qmask[j]], s.qy[qmask[j]]
            A_task[t, j] = np.mean(mem.predict(q, superclass=f"task{j}") == truth)
            A_class[t, j] = np.mean(mem.predict(q) == truth)
    total = time.perf_counter() - t0
    return ({"task_incremental": summarise(A_task), "class_incremental": summarise(A_class),
             "update_s": round(add_s, 2), "total_s": round(total, 1)}, mem)


def finetune_learner(s: Split, tasks: list[list[str]], epochs: int, seed: int = 0) -> dict[str, Any]:
    """One linear head over all classes, fine-tuned on each task in turn (no replay)."""
    classes = [c for task in tasks for c in task]
    index = {c: i for i, c in enumerate(classes)}
    T = len(tasks)
    A_task, A_class = np.zeros((T, T)), np.zeros((T, T))
    torch.manual_seed(seed)
    head = Head(s.X.shape[1], len(classes), 0)
    first = np.isin(s.y, tasks[0])
    head.mu.copy_(torch.from_numpy(s.X[first].mean(0)))
    head.sigma.copy_(torch.from_numpy(s.X[first].std(0) + 1e-6))
    qmask = [np.isin(s.qy, task) for task in tasks]
    t0 = time.perf_counter()
    for t, task in enumerate(tasks):
        rows = np.isin(s.y, task)
        train_module(head, s.X[rows], np.array([index[c] for c in s.y[rows]]), epochs=epochs, seed=seed + t)
        with torch.inference_mode():
            for j in range(t + 1):
                logits = head(torch.from_numpy(np.ascontiguousarray(s.Q[qmask[j]]))).numpy()
                truth = np.array([index[c] for c in s.qy[qmask[j]]])
                cols_task = np.array([index[c] for c in tasks[j]])
                cols_seen = np.arange((t + 1) * len(task))
                A_task[t, j] = np.mean(cols_task[logits[:, cols_task].argmax(1)] == truth)
                A_class[t, j] = np.mean(cols_seen[logits[:, cols_seen].argmax(1)] == truth)
    return {"task_incremental": summarise(A_task), "class_incremental": summarise(A_class),
            "total_s": round(time.perf_counter() - t0, 1), "epochs_per_task": epochs}


def joint_learner(s: Split, tasks: list[list[str]], epochs: int) -> dict[str, Any]:
    """A linear probe trained on all tasks at once: the upper bound, scored like the last step."""
    classes = [c for task in tasks for c in task]
    index = {c: i for i, c in enumerate(classes)}
    from router import fit_head

    head = fit_head(s.X, np.array([index[c] for c in s.y]), len(classes), epochs=epochs)
    with torch.inference_mode():
        logits = head(torch.from_numpy(np.ascontiguousarray(s.Q))).numpy()
    truth = np.array([index[c] for c in s.qy])
    task_acc, class_acc = [], []
    for task in tasks:
        q = np.isin(s.qy, task)
        cols = np.array([index[c] for c in task])
        task_acc.append(np.mean(cols[logits[q][:, cols].argmax(1)] == truth[q]))
        class_acc.append(np.mean(logits[q].argmax(1) == truth[q]))
    return {"task_incremental": {"final_average_accuracy": round(float(np.mean(task_acc)), 4)},
            "class_incremental": {"final_average_accuracy": round(float(np.mean(class_acc)), 4)}}


def run(s: Split, *, n_tasks: int = 10, seed: int = 0, k: int = 10, epochs: int = 5) -> dict[str, Any]:
    tasks = task_order(s.classes, n_tasks, seed)
    mem_rows, mem = memory_learner(s, tasks, k)
    # order-invariance: the incrementally built memory predicts exactly as one built at once
    at_once = VisualMemory(s.X.shape[1], k=k, progress=False)
    seen = np.isin(s.y, [c for task in tasks for c in task])
    at_once.add(s.X[seen], s.y[seen])
    p_inc, p_once = mem.predict_proba(s.Q), at_once.predict_proba(s.Q)
    same = bool(np.allclose(p_inc, p_once, atol=1e-6) and np.array_equal(p_inc.argmax(1), p_once.argmax(1)))
    out = {
        "data": s.description, "tasks": n_tasks, "classes_per_task": len(tasks[0]), "seed": seed,
        "task_order": tasks,
        "systems": {
            "memory updates (kNN, k=%d)" % k: mem_rows,
            "sequential fine-tuning, linear head": finetune_learner(s, tasks, epochs, seed),
            "joint linear probe (upper bound)": joint_learner(s, tasks, epochs),
        },
        "memory_equals_batch_build": same,
    }
    for name, row in out["systems"].items():
        print(f"{name:<40} task-IL {row['task_incremental'].get('final_average_accuracy')} "
              f"class-IL {row['class_incremental'].get('final_average_accuracy')} "
              f"forgetting {row['task_incremental'].get('forgetting')} / "
              f"{row['class_incremental'].get('forgetting')}", flush=True)
    return out


def _options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=5, help="epochs per task of the fine-tuned head")


def main(argv: list[str] | None = None) -> dict:
    return command("continual", __doc__, lambda s, a: run(s, n_tasks=a.tasks, seed=a.seed, epochs=a.epochs),
                   argv, _options)


if __name__ == "__main__":
    main()
