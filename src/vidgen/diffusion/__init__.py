"""Diffusion and flow-matching processes and their samplers, apart from any network (as diffusers keeps
its schedulers): ``schedules`` (the Gaussian forward process of DDPM), ``flow`` (the linear path of flow
matching) and ``samplers`` (DDPM, DDIM, Euler, Heun), chosen at sampling time without retraining."""
