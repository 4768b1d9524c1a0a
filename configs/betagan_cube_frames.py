r"""beta-GAN on two nested cubic frames in 3-D (Mehrjou et al. 2017, Fig. 2).

Same architectures and annealing as configs/betagan_mixture_3d.py; the data are
the 12 edges of cubes of half-side 0.4 and 0.8.
"""

from configs import betagan_mixture_3d


def get_config():
  c = betagan_mixture_3d.get_config("5")
  c.data.name = "cube_frames"
  return c
