"""Train and evaluate a set of configs on equal budgets, through MMDetection.

Each run is MMDetection's own ``tools/train.py`` (shipped inside the mmdet
package) started in a subprocess on a config prepared from the method's
config: data root, seed and work directory are set, nothing else. The LVIS
metric of the run's final validation is read back from the run's
``vis_data/scalars.json`` and per-category record.
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

__all__ = [
    'RunSpec', 'RunResult', 'mmdet_tool', 'prepare_config', 'run_training',
    'read_metrics', 'run_name', 'boundary_metrics', 'predict_checkpoint',
    'data_roots', 'synthetic_set_args', 'prepare_data', 'stage1_config',
    'final_checkpoint', 'plan_stages', 'runs_to_train',
    'synthetic_image_level_args', 'image_level_dir', 'image_level_sets'
]

DEFAULT_DATA_ROOT = 'data/synthetic_lvis/'
# MMEngine resolves ``mmdet::`` bases through pkg_resources, whose lazy
# initialisation is not thread-safe: trainings prepared side by side
# (``--jobs``) read their configs one at a time.
_CONFIG_LOCK = threading.Lock()
_ITER_RE = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')
_EPOCH_RE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')


@dataclass
class RunSpec:
    """One training: ``config`` at ``seed`` in ``work_dir``.

    ``stage1_work_dir`` (a stage-2 row): the run folder of the stage-1 row
    at the same seed; the training loads its final checkpoint
    (``load_from``, see :func:`plan_stages`).
    """
    config: str
    seed: int
    work_dir: str
    stage1_work_dir: Optional[str] = None


@dataclass
class RunResult:
    config: str
    name: str
    seed: int
    work_dir: str
    metrics: Dict[str, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    returncode: int = 0
    per_category_file: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)


def run_name(config: str) -> str:
    """Short name of a config file: its stem."""
    return osp.splitext(osp.basename(config))[0]


def mmdet_tool(name: str) -> str:
    """Path of a script shipped in the mmdet package (``train.py`` ...)."""
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', name)
    if not osp.exists(path):
        raise FileNotFoundError(
            f'{path} not found: this mmdet install ships no tools/{name}')
    return path


def _replace_data_root(obj, old: str, new: str):
    if isinstance(obj, dict):
        return {k: _replace_data_root(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_data_root(v, old, new) for v in obj]
    if isinstance(obj, str) and obj.startswith(old):
        return new + obj[len(old):]
    return obj


def prepare_config(config: str,
                   work_dir: str,
                   seed: int,
                   data_root: Optional[str] = None,
                   overrides: Optional[dict] = None) -> str:
    """Write the config of one run into ``work_dir`` and return its path.

    Every string starting with the config's ``data_root`` (dataset roots,
    evaluator annotation files) is moved to ``data_root``; the seed is set
    through MMEngine's ``randomness``.
    """
    with _CONFIG_LOCK:
        cfg = Config.fromfile(config)
    old_root = cfg.get('data_root', DEFAULT_DATA_ROOT)
    if data_root is not None:
        new_root = data_root.rstrip('/') + '/'
        old_il = image_level_dir(cfg)
        new_il = image_level_dir(cfg, data_root)
        cfg_dict = _replace_data_root(cfg.to_dict(), old_root, new_root)
        if old_il is not None and old_il != new_il:
            # the companion set moves with its detection set
            cfg_dict = _replace_data_root(cfg_dict, old_il + '/',
                                          new_il + '/')
            cfg_dict['synthetic_image_level']['out'] = new_il
        cfg = Config(cfg_dict, filename=config)
        cfg.data_root = new_root
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.work_dir = work_dir
    # Keep the final predictions (``<work_dir>/results/val.segm.json`` ...)
    # so mask runs can also be scored for boundary quality.
    if isinstance(cfg.get('val_evaluator'), dict):
        cfg.val_evaluator.outfile_prefix = osp.join(work_dir, 'results',
                                                    'val')
    if overrides:
        cfg.merge_from_dict(overrides)
    os.makedirs(work_dir, exist_ok=True)
    out = osp.join(work_dir, run_name(config) + '.py')
    cfg.dump(out)
    return out


def synthetic_set_args(cfg: Config) -> Optional[Dict[str, Any]]:
    """Generator arguments of the synthetic set a config trains on, or None.

    A config names a synthetic set by defining ``synthetic_lvis`` (the
    generator's keyword arguments, e.g. ``dict(head_instances=3.0)``; an
    empty dict is the default set) or by keeping the default synthetic root
    ``data/synthetic_lvis/`` of ``configs/_base_/``. Any other config (a real
    LVIS ``data/lvis_v1/``, a user's own data) names no set: None.
    """
    gen = cfg.get('synthetic_lvis', None)
    if gen is not None:
        if not isinstance(gen, dict):
            raise TypeError(
                f'{cfg.filename}: synthetic_lvis must be a dict of generator '
                f'arguments, not {type(gen).__name__}')
        return dict(gen)
    root = cfg.get('data_root', None)
    if isinstance(root, str) and (osp.normpath(root) == osp.normpath(
            DEFAULT_DATA_ROOT)):
        return {}
    return None


def data_roots(configs: Sequence[str],
               override: Optional[str] = None
               ) -> Dict[str, Tuple[str, Tuple[Tuple[str, Any], ...]]]:
    """Synthetic set of each config: ``{config: (root, generator args)}``.

    A config names its set by ``data_root`` and, for a variant of the
    default set, the generator arguments in ``synthetic_lvis`` (e.g.
    ``dict(head_instances=3.0)``). ``override`` (``--data-root``) puts every
    config on that one root, which must then not need two different sets.

    Raises:
        ValueError: naming the config when it names no synthetic set (see
            :func:`synthetic_set_args`; e.g. a real-LVIS config, whose
            ``data_root`` must never be handed to the generator), or when
            ``override`` would need two different sets.
    """
    out = {}
    for c in configs:
        with _CONFIG_LOCK:
            cfg = Config.fromfile(c)
        gen_args = synthetic_set_args(cfg)
        if gen_args is None:
            raise ValueError(
                f'{c} names no synthetic set (no `synthetic_lvis` in the '
                f"config and data_root {cfg.get('data_root', None)!r} is not "
                f'{DEFAULT_DATA_ROOT!r}): the benchmark runner generates '
                'only synthetic sets and never writes into a real data '
                'folder. Train it with MMDetection\'s tools/train.py, or '
                'add `synthetic_lvis = dict()` to a config meant for the '
                'synthetic benchmark')
        root = override or cfg.get('data_root', DEFAULT_DATA_ROOT)
        gen = tuple(sorted(gen_args.items()))
        out[c] = (root.rstrip('/'), gen)
    by_root: Dict[str, tuple] = {}
    for c, (root, gen) in out.items():
        if by_root.setdefault(root, (c, gen))[1] != gen:
            other = by_root[root][0]
            raise ValueError(
                f'{c} and {other} need different synthetic sets '
                f'(synthetic_lvis = {dict(gen)} vs {dict(by_root[root][1])}) '
                f'but would both use {root}: drop --data-root or run them '
                'separately')
    return out


def prepare_data(configs: Sequence[str],
                 data_root: Optional[str] = None,
                 seed: int = 0,
                 num_classes: int = 100,
                 progress: Optional[Callable[[str], None]] = print
                 ) -> Dict[str, Tuple[str, Tuple[Tuple[str, Any], ...]]]:
    """Make sure the synthetic set of every config exists; return
    :func:`data_roots`.

    Every config must name a synthetic set (checked for all of them before
    anything is generated). Each set is reused when it was generated with
    these arguments and regenerated otherwise; the generator writes only into
    a folder that is empty, missing or one it made itself (see
    :func:`longtail_benchmark.synthetic.check_output_folder`), so a real data
    folder is refused before any file in it is touched.

    A config with ``synthetic_image_level`` also gets the image-level
    companion of its set (:func:`image_level_sets`: checked for all configs
    first), generated after the detection sets, reused when made with the
    same arguments from the same categories, written only into a folder
    that is missing, empty or made by the companion generator.
    """
    from .synthetic import ensure_synthetic_lvis
    from .synthetic.image_level import ensure_image_level_set
    roots = data_roots(configs, data_root)
    # every companion is checked before any set is generated
    companions = image_level_sets(configs, data_root, roots)
    for root, gen_args in sorted(set(roots.values())):
        if progress is not None:
            progress(f'data: {root} {dict(gen_args)} (generated if missing)')
        ensure_synthetic_lvis(root, seed=seed, num_classes=num_classes,
                              **dict(gen_args))
    for out, (det_root, args) in sorted(companions.items()):
        if progress is not None:
            progress(f'data: {out} (image-level companion of {det_root}, '
                     f'{args}; generated if missing)')
        ensure_image_level_set(out, det_root,
                               **dict(dict(seed=seed), **json.loads(args)))
    return roots


def synthetic_image_level_args(cfg: Config) -> Optional[Dict[str, Any]]:
    """The ``synthetic_image_level`` dict of a config (a plain dict), or None.

    ``synthetic_image_level = dict(out=..., **args)`` asks for the
    image-level companion of the config's synthetic set
    (:mod:`longtail_benchmark.synthetic.image_level`): ``args`` are the
    keyword arguments of ``make_image_level_set`` (``seed``,
    ``images_per_group``, ``box_fraction``, ``image_size``, ``size_range``,
    ``image_format``); ``out`` (optional) is its folder, by default the
    detection set's sibling ``<data_root>_imagelevel``.
    """
    gen = cfg.get('synthetic_image_level', None)
    if gen is None:
        return None
    if not isinstance(gen, dict):
        raise TypeError(
            f'{cfg.filename}: synthetic_image_level must be a dict of '
            f'image-level generator arguments, not {type(gen).__name__}')
    return json.loads(json.dumps(gen))  # ConfigDict -> plain dicts


def image_level_dir(cfg: Config,
                    data_root: Optional[str] = None) -> Optional[str]:
    """Folder of the config's image-level companion set, or None.

    ``synthetic_image_level.out`` when given, else
    ``<detection root>_imagelevel``. With ``data_root`` (``--data-root``)
    other than the config's own, the companion follows its detection set:
    ``<data_root>_imagelevel`` whatever ``out`` says, and
    :func:`prepare_config` moves the config's paths that start with the
    companion folder there.
    """
    from .synthetic.image_level import default_image_level_dir
    gen = synthetic_image_level_args(cfg)
    if gen is None:
        return None
    own_root = cfg.get('data_root', DEFAULT_DATA_ROOT)
    if data_root is not None and (osp.normpath(data_root) !=
                                  osp.normpath(own_root)):
        return default_image_level_dir(data_root)
    out = gen.get('out', None)
    if out is None:
        return default_image_level_dir(own_root)
    if not isinstance(out, str) or not out:
        raise TypeError(f'{cfg.filename}: synthetic_image_level.out must be '
                        f'a folder path, not {out!r}')
    return osp.normpath(out)


def image_level_sets(
        configs: Sequence[str],
        override: Optional[str] = None,
        roots: Optional[Dict[str, Tuple[str, Any]]] = None
) -> Dict[str, Tuple[str, str]]:
    """Image-level companions the configs need:
    ``{folder: (detection root, generator arguments as sorted json)}``.

    Checks everything before a file is written: the arguments (through the
    generator's own validation, errors name the config), that each
    companion folder is separate from every detection set's folder and is
    missing, empty or the companion generator's (``FolderNotOwnedError``
    otherwise), and that no folder is asked for two different companions.
    ``roots``: the :func:`data_roots` of ``configs`` when already computed.
    A companion without ``seed`` gets the data seed of :func:`prepare_data`.

    Raises:
        ValueError: naming the config(s).
        FolderNotOwnedError: a companion folder holds foreign files.
    """
    from .synthetic.image_level import (check_image_level_folder,
                                        image_level_args)
    if roots is None:
        roots = data_roots(configs, override)
    det_folders = {osp.abspath(r) for r, _ in roots.values()}
    out: Dict[str, Tuple[str, str]] = {}
    owner: Dict[str, str] = {}
    for c in configs:
        with _CONFIG_LOCK:
            cfg = Config.fromfile(c)
        gen = synthetic_image_level_args(cfg)
        if gen is None:
            continue
        folder = image_level_dir(cfg, override)
        gen.pop('out', None)
        try:
            image_level_args(**gen)
        except (TypeError, ValueError) as e:
            raise ValueError(f'{c}: synthetic_image_level: {e}') from None
        det_root = roots[c][0]
        for d in det_folders:
            a = osp.abspath(folder)
            if osp.commonpath([a, d]) in (a, d):
                raise ValueError(
                    f'{c}: the image-level set {folder} and the detection '
                    f'set {d} must be separate folders (neither inside the '
                    'other)')
        check_image_level_folder(folder)  # a foreign folder stops all
        entry = (det_root, json.dumps(gen, sort_keys=True))
        if out.setdefault(folder, entry) != entry:
            raise ValueError(
                f'{c} and {owner[folder]} need different image-level sets '
                f'({entry} vs {out[folder]}) in the same folder {folder}: '
                'give one of them its own synthetic_image_level.out')
        owner.setdefault(folder, c)
    return out


def stage1_config(config: str) -> Optional[str]:
    """The stage-1 config a stage-2 config starts from, or None.

    A stage-2 config names it as ``stage1_config = '<path>'``; a relative
    path is taken from the working directory (the repository root, as the
    shipped configs write it) or, failing that, from the config's folder.

    Raises:
        FileNotFoundError: naming the config and its ``stage1_config`` when
            the file is found in neither place.
    """
    with _CONFIG_LOCK:
        cfg = Config.fromfile(config)
    path = cfg.get('stage1_config', None)
    if path is None:
        return None
    if not isinstance(path, str):
        raise TypeError(f'{config}: stage1_config must be a path string, '
                        f'not {type(path).__name__}')
    for cand in (path, osp.join(osp.dirname(osp.abspath(config)), path)):
        if osp.isfile(cand):
            return osp.normpath(cand)
    raise FileNotFoundError(
        f'{config}: stage1_config = {path!r} is not a file (looked in '
        f'{os.getcwd()} and {osp.dirname(osp.abspath(config))})')


def final_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a finished run saved last, or None.

    MMEngine's ``CheckpointHook`` names it in ``<work_dir>/last_checkpoint``
    (an absolute or run-relative path); a run folder that was moved is
    looked up by the file's name inside ``work_dir``.
    """
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        return None
    with open(last) as f:
        ckpt = f.read().strip()
    for cand in (ckpt, osp.join(work_dir, osp.basename(ckpt))):
        if ckpt and osp.isfile(cand):
            return cand
    return None


def plan_stages(configs: Sequence[str], seeds: Sequence[int],
                out: str) -> List[List[RunSpec]]:
    """The runs of a benchmark, in phases that must run one after another.

    A config without ``stage1_config`` is in phase 0. A stage-2 config is
    one phase after its stage-1 config, which joins the benchmark when it
    is not among ``configs`` (its row is then trained first if its run is
    missing, and reported beside the stage-2 row); chains (stage 3 from
    stage 2) work the same way. The stage-2 run at seed ``k`` gets the
    stage-1 run folder at seed ``k`` under the same ``out``
    (``RunSpec.stage1_work_dir``), so it starts from that run's final
    checkpoint. Runs inside a phase are independent (``--jobs``).

    Raises:
        ValueError: on a cycle of ``stage1_config``.
    """
    parent: Dict[str, Optional[str]] = {}
    order: List[str] = []

    def visit(config: str, chain: Tuple[str, ...]) -> None:
        key = osp.normpath(config)
        if key in chain:
            raise ValueError('stage1_config cycle: ' +
                             ' -> '.join(chain + (key, )))
        if key in parent:
            return
        first = stage1_config(key)
        if first is not None:
            visit(first, chain + (key, ))
        parent[key] = first
        order.append(key)

    for c in configs:
        visit(c, ())
    depth: Dict[str, int] = {}
    for c in order:  # parents come before their children
        depth[c] = 0 if parent[c] is None else depth[parent[c]] + 1

    def work_dir(config: str, seed: int) -> str:
        return osp.join(out, run_name(config), f'seed{seed}')

    phases: List[List[RunSpec]] = [
        [] for _ in range(1 + max(depth.values(), default=-1))
    ]
    for c in order:
        for s in seeds:
            phases[depth[c]].append(
                RunSpec(c, s, work_dir(c, s),
                        None if parent[c] is None else work_dir(
                            parent[c], s)))
    return phases


def runs_to_train(phases: Sequence[Sequence[RunSpec]],
                  rerun: bool = False) -> List[str]:
    """Work folders of the runs of ``phases`` (:func:`plan_stages`) that
    must train.

    A run with a ``result.json`` is finished and reused, unless ``rerun``,
    or unless a run that trains starts from it and it kept no checkpoint
    (then it trains again first; this follows chains of stages).
    """
    train: List[str] = []
    needed = set()
    for phase in reversed(list(phases)):
        for spec in reversed(list(phase)):
            finished = osp.isfile(osp.join(spec.work_dir, 'result.json'))
            if (rerun or not finished
                    or (spec.work_dir in needed
                        and final_checkpoint(spec.work_dir) is None)):
                train.append(spec.work_dir)
                if spec.stage1_work_dir is not None:
                    needed.add(spec.stage1_work_dir)
    return train[::-1]


def read_metrics(work_dir: str) -> Dict[str, float]:
    """The last validation metrics a run logged (``lvis/...`` keys)."""
    found: Dict[str, float] = {}
    for ts in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, ts, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                vals = {k: v for k, v in rec.items() if k.startswith('lvis/')}
                if vals:
                    found = vals
    return found


def _dumped_config(work_dir: str) -> Optional[str]:
    """The run config :func:`prepare_config` wrote into ``work_dir``."""
    cfgs = sorted(f for f in os.listdir(work_dir) if f.endswith('.py'))
    return osp.join(work_dir, cfgs[0]) if cfgs else None


def boundary_metrics(work_dir: str,
                     tolerances: Sequence[float] = (1, 3, 5),
                     score_thr: float = 0.3) -> Dict[str, float]:
    """Boundary F-score of a finished run's saved mask predictions.

    Reads ``<work_dir>/results/val.segm.json`` (written by the LVIS metric
    through ``outfile_prefix``) and the validation annotation file named in
    the run's dumped config; returns ``{}`` for runs without mask results.
    Keys are ``boundary/F@<tol>px`` (see
    :func:`~longtail_plugin.evaluation.functional.evaluate_boundary_fscore`).
    """
    segm_file = osp.join(work_dir, 'results', 'val.segm.json')
    cfg_file = _dumped_config(work_dir)
    if not osp.isfile(segm_file) or cfg_file is None:
        return {}
    from longtail_plugin.evaluation.functional.boundary_fscore import (
        evaluate_boundary_fscore, load_predictions)
    with _CONFIG_LOCK:
        cfg = Config.fromfile(cfg_file)
    with open(cfg.val_evaluator.ann_file) as f:
        ann = json.load(f)
    with open(segm_file) as f:
        preds = load_predictions(json.load(f), [])
    out = evaluate_boundary_fscore(
        ann, preds, tolerances=tolerances, score_thr=score_thr)
    return {f'boundary/{k}': float(v) for k, v in out.items()}


def predict_checkpoint(work_dir: str,
                       threads: Optional[int] = None) -> str:
    """Run mmdet's ``test.py`` on a finished run's last checkpoint and save
    its predictions where :func:`boundary_metrics` reads them.

    For runs trained before predictions were kept. Returns the prefix of
    the written result files (``<work_dir>/results/val``).
    """
    cfg_file = _dumped_config(work_dir)
    last = osp.join(work_dir, 'last_checkpoint')
    if cfg_file is None or not osp.isfile(last):
        raise FileNotFoundError(
            f'{work_dir} holds no finished run (config and last_checkpoint)')
    with open(last) as f:
        ckpt = f.read().strip()
    if not osp.isfile(ckpt):
        ckpt = osp.join(work_dir, osp.basename(ckpt))
    prefix = osp.join(work_dir, 'results', 'val')
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    cmd = [
        sys.executable,
        mmdet_tool('test.py'),
        cfg_file, ckpt, '--work-dir',
        osp.join(work_dir, 'test'), '--cfg-options',
        f'test_evaluator.outfile_prefix={prefix}'
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'test.py failed on {ckpt}:\n' +
                           '\n'.join(proc.stdout.splitlines()[-20:]) +
                           proc.stderr[-2000:])
    return prefix


def _find_per_category(work_dir: str) -> Optional[str]:
    hits = []
    for root, _, files in os.walk(work_dir):
        if 'per_category_ap.json' in files:
            hits.append(osp.join(root, 'per_category_ap.json'))
    return sorted(hits)[-1] if hits else None


def run_training(spec: RunSpec,
                 data_root: Optional[str] = None,
                 threads: Optional[int] = None,
                 on_progress: Optional[Callable[[int, int], None]] = None,
                 overrides: Optional[dict] = None) -> RunResult:
    """Train one config with mmdet's ``train.py``; evaluate at its end.

    A stage-2 run (``spec.stage1_work_dir``) loads the final checkpoint of
    that stage-1 run (``load_from``, replacing the config's).

    Raises:
        FileNotFoundError: for a stage-2 run whose stage-1 run has no
            checkpoint (train the stage-1 row first; :func:`plan_stages`).
    """
    if spec.stage1_work_dir is not None:
        ckpt = final_checkpoint(spec.stage1_work_dir)
        if ckpt is None:
            raise FileNotFoundError(
                f'{spec.config} (seed {spec.seed}) starts from the stage-1 '
                f'run {spec.stage1_work_dir}, which holds no checkpoint '
                '(no last_checkpoint naming an existing file): train its '
                'stage1_config first')
        overrides = dict(overrides or {}, load_from=osp.abspath(ckpt))
    cfg_path = prepare_config(spec.config, spec.work_dir, spec.seed,
                              data_root, overrides)
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
        env['MKL_NUM_THREADS'] = str(threads)
    env['PYTHONUNBUFFERED'] = '1'
    cmd = [
        sys.executable,
        mmdet_tool('train.py'), cfg_path, '--work-dir', spec.work_dir
    ]
    log_path = osp.join(spec.work_dir, 'train_stdout.log')
    start = time.time()
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            m = _ITER_RE.search(line)
            if m and on_progress is not None:
                on_progress(int(m.group(1)), int(m.group(2)))
        proc.wait()
    result = RunResult(
        config=spec.config,
        name=run_name(spec.config),
        seed=spec.seed,
        work_dir=spec.work_dir,
        wall_time_s=time.time() - start,
        returncode=proc.returncode)
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = ''.join(f.readlines()[-30:])
        raise RuntimeError(
            f'training {spec.config} (seed {spec.seed}) failed with exit '
            f'code {proc.returncode}; log: {log_path}\n{tail}')
    result.metrics = read_metrics(spec.work_dir)
    result.metrics.update(boundary_metrics(spec.work_dir))
    result.per_category_file = _find_per_category(spec.work_dir)
    return result
