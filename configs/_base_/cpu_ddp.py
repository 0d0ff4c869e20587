# Several training processes on CPU (gloo) with MMEngine 0.10's runner and
# MMDetection's tools/train.py | test.py --launcher pytorch. Add this file to
# a config's _base_ list next to the method's config, e.g.
#   _base_ = ['../eqlv2/mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py',
#             '../_base_/cpu_ddp.py']
# and start it with python -m torch.distributed.run --nproc_per_node N ...
# (README "Multi-process training"). The synthetic configs already set
# env_cfg = dict(dist_cfg=dict(backend='gloo')); other configs need it too.
# Harmless on GPUs: the runner then defers to MMEngine, and device_ids=None
# lets DistributedDataParallel use the device the model is on. The runner is
# registered by the plugin (custom_imports of the method's config); keys of
# two sibling _base_ files must not overlap, so only these two are set here.

# MMEngine 0.10.7 calls torch.cuda.set_device before init_process_group;
# this runner starts the gloo group itself on a machine without CUDA
# (longtail_plugin/compat/cpu_distributed.py).
runner_type = 'mmdet.CPUDistributedRunner'
# MMEngine's own wrapper with MMEngine's defaults, except device_ids: its
# default [LOCAL_RANK] is refused by DistributedDataParallel for a CPU module.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel',
    device_ids=None,
    broadcast_buffers=False,
    find_unused_parameters=False)
