"""Time per training iteration of several configs, measured side by side.

Answers "how much does config B cost per iteration relative to config A"
on a machine whose load changes while it is measured: every config is
built in the same process and their iterations are interleaved, so a load
change touches all of them alike.

For each config an MMEngine ``Runner`` is built from the config (moved into
a temporary work directory by :func:`longtail_benchmark.runner.prepare_config`;
validation, testing and the checkpoint hook off) and prepared the way
``Runner.train()`` prepares one before its loop: the train loop (its
dataloader and infinite iterator), the optimizer wrapper (with the config's
``auto_scale_lr``), the parameter schedulers, the model's initial weights
and the optimizer wrapper's iteration counters. One iteration is then what
MMEngine's ``IterBasedTrainLoop`` does without its hooks::

    data_batch = next(loop.dataloader_iterator)
    runner.model.train_step(data_batch, optim_wrapper=runner.optim_wrapper)

Outside the timed part, as the runner's ``RuntimeInfoHook`` and
``ParamSchedulerHook`` would, the message hub's ``'iter'`` is set before the
step and the iteration-based schedulers are stepped after it. No other hook
runs (no logging, no checkpoint): what is timed is the data loading and the
forward / backward / optimizer step.

Schedule: ``warmup`` untimed iterations of every config, then ``rounds``
rounds; a round runs one iteration of every config in turn, the order
rotated by one config each round (round ``r`` starts with config
``r mod n``) so no config always runs right after another. Each iteration
gives two times (``time.perf_counter``):

* ``total``: ``next(iterator)`` + ``train_step`` (data loading included);
* ``step``: ``train_step`` alone.

Per config: median and mean seconds per iteration of both, images per
iteration (counted in the batches), the ratio of its median to the first
config's median, and the paired ratio (the median over rounds of the ratio
of its time to the first config's time in the same round). Data loading
runs in the main process by default (``num_workers=0``) so that its cost is
counted in ``total`` whatever the other configs do; a config's own workers
would load ahead while other configs run.

The method and code are ours (a measurement tool of this repository; no
paper defines it).
"""
import json
import math
import os
import os.path as osp
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from mmengine.config import Config

from .runner import prepare_config, run_name

__all__ = [
    'ConfigTiming', 'TrainStepper', 'timing_config', 'rotated_order',
    'measure_train_steps', 'summarize_timings', 'format_timing_table',
    'write_timing_results'
]


@dataclass
class ConfigTiming:
    """Timed iterations of one config (seconds; one entry per round)."""
    name: str
    config: str
    total: List[float] = field(default_factory=list)
    step: List[float] = field(default_factory=list)
    images: List[int] = field(default_factory=list)
    last_loss: Optional[float] = None

    def to_dict(self) -> dict:
        return asdict(self)


def timing_config(config: str,
                  work_dir: str,
                  seed: int = 0,
                  data_root: Optional[str] = None,
                  overrides: Optional[dict] = None,
                  num_workers: Optional[int] = 0,
                  log_level: str = 'WARNING',
                  experiment_name: Optional[str] = None) -> Config:
    """The config of one timed training, written into ``work_dir``.

    ``config`` goes through :func:`longtail_benchmark.runner.prepare_config`
    (``data_root`` moves the detection set and its image-level companion;
    ``overrides`` are merged as with ``--cfg-options``); then validation,
    testing, the checkpoint hook and ``load_from`` / ``resume`` are
    dropped, ``experiment_name`` (when given) also names the visualizer,
    and with ``num_workers`` not None the train dataloader loads
    in that many worker processes (0: in the main process).

    Raises:
        FileNotFoundError: naming ``config`` when it does not exist.
        KeyError: naming ``config`` when it has no ``train_dataloader``,
            ``train_cfg`` or ``optim_wrapper``.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config} not found')
    path = prepare_config(config, work_dir, seed, data_root=data_root,
                          overrides=overrides)
    cfg = Config.fromfile(path)
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper'):
        if cfg.get(key) is None:
            raise KeyError(f'{config}: `{key}` is missing; a config timed '
                           'for training needs train_dataloader, train_cfg '
                           'and optim_wrapper')
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    if isinstance(cfg.get('default_hooks'), dict):
        cfg.default_hooks.checkpoint = None
    cfg.load_from = None
    cfg.resume = False
    cfg.log_level = log_level
    if experiment_name is not None:
        cfg.experiment_name = experiment_name
        if isinstance(cfg.get('visualizer'), dict):
            # MMDetection's runtime names every visualizer 'visualizer':
            # runners built side by side would share one instance
            cfg.visualizer.name = f'{experiment_name}_visualizer'
    if num_workers is not None:
        if num_workers < 0:
            raise ValueError(f'num_workers must be >= 0, not {num_workers}')
        cfg.train_dataloader.num_workers = num_workers
        cfg.train_dataloader.persistent_workers = num_workers > 0
    return cfg


def _batch_size(data_batch: Any) -> int:
    """Images in a collated MMDetection batch."""
    if isinstance(data_batch, dict):
        for key in ('data_samples', 'inputs'):
            if key in data_batch and hasattr(data_batch[key], '__len__'):
                return len(data_batch[key])
    if hasattr(data_batch, '__len__'):
        return len(data_batch)
    raise TypeError(f'cannot count the images of a {type(data_batch)} batch')


def _total_loss(outputs: Any) -> Optional[float]:
    if isinstance(outputs, dict) and 'loss' in outputs:
        v = outputs['loss']
        return float(v.detach() if hasattr(v, 'detach') else v)
    return None


class TrainStepper:
    """One config's Runner, prepared for single training iterations.

    Args:
        cfg: a config from :func:`timing_config` (its ``work_dir`` set).
    """

    def __init__(self, cfg: Config) -> None:
        from mmengine.model import is_model_wrapper
        from mmengine.runner import Runner
        runner = Runner.from_cfg(cfg)
        # what Runner.train() does before ``train_loop.run()`` (the hooks'
        # ``before_run`` and load_or_resume aside: no hook runs here and the
        # timing config loads no checkpoint)
        runner._train_loop = runner.build_train_loop(runner._train_loop)
        runner.optim_wrapper = runner.build_optim_wrapper(
            runner.optim_wrapper)
        runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
        if runner.param_schedulers is not None:
            runner.param_schedulers = runner.build_param_scheduler(
                runner.param_schedulers)
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'train_step'):
            raise TypeError(f'{cfg.filename}: the model has no train_step')
        if hasattr(model, 'init_weights'):
            model.init_weights()
        loop = runner.train_loop
        runner.optim_wrapper.initialize_count_status(runner.model, loop.iter,
                                                     loop.max_iters)
        self.runner = runner
        self.loop = loop
        self.iter = 0

    def _set_iter(self) -> None:
        from mmengine.logging import MessageHub
        self.runner.message_hub.update_info('iter', self.iter)
        # code reading MessageHub.get_current_instance() (e.g. the plugin's
        # losses) sees the most recently built runner's hub: keep it on
        # this runner's iteration too
        MessageHub.get_current_instance().update_info('iter', self.iter)

    def _step_schedulers(self) -> None:
        scheds = self.runner.param_schedulers
        if scheds is None:
            return
        groups = scheds.values() if isinstance(scheds, dict) else [scheds]
        for group in groups:
            for s in group:
                if not s.by_epoch:
                    s.step()

    def step(self) -> Dict[str, Any]:
        """One training iteration: ``{'total', 'step', 'images', 'loss'}``
        (seconds for ``total`` = data loading + ``train_step``, ``step`` =
        ``train_step`` alone)."""
        runner = self.runner
        self._set_iter()
        runner.model.train()
        t0 = time.perf_counter()
        data_batch = next(self.loop.dataloader_iterator)
        t1 = time.perf_counter()
        outputs = runner.model.train_step(
            data_batch, optim_wrapper=runner.optim_wrapper)
        t2 = time.perf_counter()
        self._step_schedulers()
        self.iter += 1
        self.loop._iter = self.iter
        return dict(total=t2 - t0, step=t2 - t1,
                    images=_batch_size(data_batch),
                    loss=_total_loss(outputs))


def rotated_order(n: int, round_index: int) -> List[int]:
    """Config indices of one round: ``r mod n, r mod n + 1, ...`` (cyclic)."""
    k = round_index % n
    return list(range(k, n)) + list(range(0, k))


def _unique_names(configs: Sequence[str]) -> List[str]:
    names: List[str] = []
    for c in configs:
        base = run_name(c)
        name, k = base, 2
        while name in names:
            name, k = f'{base}#{k}', k + 1
        names.append(name)
    return names


def measure_train_steps(
        configs: Sequence[str],
        warmup: int = 3,
        rounds: int = 20,
        threads: Optional[int] = 1,
        work_root: Optional[str] = None,
        data_root: Optional[str] = None,
        overrides: Optional[Sequence[Optional[dict]]] = None,
        num_workers: Optional[int] = 0,
        seed: int = 0,
        progress: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Build every config's runner, warm up, then time ``rounds`` rounds.

    Args:
        configs: config files; the first is the reference of the ratios.
        warmup: untimed iterations of each config before the rounds.
        rounds: timed rounds (one iteration of every config each).
        threads: ``torch.set_num_threads`` (None: leave torch's setting).
        work_root: where the runners' work directories go (default: a
            temporary directory removed afterwards).
        data_root, seed, num_workers: see :func:`timing_config`.
        overrides: one dict (or None) per config, merged into it.
        progress: called with a line of text at each stage.

    Returns:
        :func:`summarize_timings` of the measurement.
    """
    import torch
    configs = list(configs)
    if not configs:
        raise ValueError('no config to time')
    if warmup < 0:
        raise ValueError(f'warmup must be >= 0, not {warmup}')
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, not {rounds}')
    if threads is not None and threads < 1:
        raise ValueError(f'threads must be >= 1, not {threads}')
    if overrides is None:
        overrides = [None] * len(configs)
    overrides = list(overrides)
    if len(overrides) != len(configs):
        raise ValueError(f'{len(overrides)} overrides for {len(configs)} '
                         'configs: give one (or None) per config')
    say = progress or (lambda msg: None)
    if threads is not None:
        torch.set_num_threads(threads)
    names = _unique_names(configs)
    tmp = None
    if work_root is None:
        tmp = tempfile.TemporaryDirectory(prefix='train_step_timing_')
        work_root = tmp.name
    try:
        steppers = []
        stamp = f'{os.getpid()}_{int(time.time() * 1000)}'
        for i, (c, name, ov) in enumerate(zip(configs, names, overrides)):
            say(f'building {name}')
            wd = osp.join(work_root, f'{i}_{run_name(c)}')
            cfg = timing_config(
                c, wd, seed=seed, data_root=data_root, overrides=ov,
                num_workers=num_workers,
                experiment_name=f'train_step_timing_{i}_{stamp}')
            steppers.append(TrainStepper(cfg))
        if threads is not None and torch.get_num_threads() != threads:
            raise RuntimeError(
                f'torch uses {torch.get_num_threads()} threads after the '
                f'runners were built, not the {threads} asked for')
        timings = [ConfigTiming(n, c) for n, c in zip(names, configs)]
        n = len(configs)
        for w in range(warmup):
            say(f'warm-up {w + 1}/{warmup}')
            for i in rotated_order(n, w):
                out = steppers[i].step()
                timings[i].last_loss = out['loss']
        for r in range(rounds):
            for i in rotated_order(n, r):
                out = steppers[i].step()
                timings[i].total.append(out['total'])
                timings[i].step.append(out['step'])
                timings[i].images.append(out['images'])
                timings[i].last_loss = out['loss']
            say(f'round {r + 1}/{rounds}: ' + ', '.join(
                f'{t.name} {t.total[-1]:.3f}s' for t in timings))
        settings = dict(
            warmup=warmup, rounds=rounds,
            threads=torch.get_num_threads(), num_workers=num_workers,
            seed=seed, data_root=data_root, torch=torch.__version__,
            cpu=_cpu_name())
        return summarize_timings(timings, settings)
    finally:
        steppers = None
        if tmp is not None:
            tmp.cleanup()


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _stats(values: Sequence[float]) -> Dict[str, float]:
    return dict(median=statistics.median(values),
                mean=statistics.fmean(values),
                min=min(values), max=max(values))


def summarize_timings(timings: Sequence[ConfigTiming],
                      settings: Optional[dict] = None) -> Dict[str, Any]:
    """Per config: statistics of ``total`` and ``step``, images per
    iteration and the ratios to the first config (see the module
    docstring). All configs must have the same number of rounds."""
    timings = list(timings)
    if not timings:
        raise ValueError('no timings to summarize')
    rounds = len(timings[0].total)
    if rounds == 0:
        raise ValueError(f'{timings[0].name}: no timed iteration')
    for t in timings:
        if len(t.total) != rounds or len(t.step) != rounds:
            raise ValueError(f'{t.name}: {len(t.total)} timed iterations, '
                             f'{timings[0].name}: {rounds}')
    ref = timings[0]
    ref_total = _stats(ref.total)
    ref_step = _stats(ref.step)
    rows = []
    for t in timings:
        total, step = _stats(t.total), _stats(t.step)
        rows.append(dict(
            name=t.name,
            config=t.config,
            images_per_iter=statistics.fmean(t.images) if t.images else None,
            total=total,
            step=step,
            ratio_total=total['median'] / ref_total['median'],
            ratio_step=step['median'] / ref_step['median'],
            paired_ratio_total=statistics.median(
                a / b for a, b in zip(t.total, ref.total)),
            last_loss=t.last_loss,
            raw=t.to_dict()))
    return dict(settings=dict(settings or {}), reference=ref.name,
                results=rows)


def _fmt(x: Optional[float], digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return 'n/a'
    return f'{x:.{digits}f}'


def format_timing_table(summary: Dict[str, Any]) -> str:
    """Markdown table of :func:`summarize_timings`' result, preceded by a
    line with the settings."""
    s = summary.get('settings', {})
    head = ('Training iteration time, configs interleaved in one process '
            f"(warm-up {s.get('warmup', '?')}, rounds {s.get('rounds', '?')}"
            f", torch threads {s.get('threads', '?')}, dataloader workers "
            f"{s.get('num_workers', '?')}, torch {s.get('torch', '?')}, "
            f"CPU: {s.get('cpu', '?')}). total = data loading + train_step; "
            'ratios: to the first config (of medians; paired: median of '
            'per-round ratios).')
    lines = [
        head, '',
        '| config | images/iter | total median (s) | total mean (s) | '
        'ratio | paired ratio | train_step median (s) | train_step mean (s) '
        '| train_step ratio |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for r in summary['results']:
        img = r['images_per_iter']
        img_s = 'n/a' if img is None else (
            str(int(img)) if float(img).is_integer() else f'{img:.1f}')
        lines.append(
            f"| {r['name']} | {img_s} | {_fmt(r['total']['median'])} | "
            f"{_fmt(r['total']['mean'])} | {_fmt(r['ratio_total'], 2)} | "
            f"{_fmt(r['paired_ratio_total'], 2)} | "
            f"{_fmt(r['step']['median'])} | {_fmt(r['step']['mean'])} | "
            f"{_fmt(r['ratio_step'], 2)} |")
    return '\n'.join(lines)


def write_timing_results(summary: Dict[str, Any], out: str) -> Dict[str, str]:
    """Write the summary as JSON to ``out`` and its table as markdown next
    to it (``out`` with the ``.md`` suffix); returns both paths."""
    d = osp.dirname(out)
    if d:
        os.makedirs(d, exist_ok=True)
    table = format_timing_table(summary)
    with open(out, 'w') as f:
        json.dump(dict(summary, table=table), f, indent=2)
    md = osp.splitext(out)[0] + '.md'
    if osp.abspath(md) == osp.abspath(out):
        md = out + '.md'
    with open(md, 'w') as f:
        f.write(table + '\n')
    return dict(json=out, markdown=md)
