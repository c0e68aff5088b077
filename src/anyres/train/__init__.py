"""Training: one engine (:mod:`anyres.train.engine`), one YAML loader (:mod:`anyres.train.config`) and one
recipe per task (:mod:`anyres.train.recipes`: sr, enhance, lmar, hllhgan); losses beside them."""
