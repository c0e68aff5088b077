"""Degradations learned from data: an image's own blur kernel (KernelGAN) and an HR-to-LR GAN (HLLHGAN)."""
