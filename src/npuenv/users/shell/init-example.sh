# for example:
# export WANDB_MODE=offline
# export ASCEND_RT_VISIBLE_DEVICES=0,1,2,3
