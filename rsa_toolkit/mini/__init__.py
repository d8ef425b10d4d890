"""Mini-Taskonomy: the embedded zoo. Rendered frames with exact labels (:mod:`rsa_toolkit.scenes`), stored in
shards (:mod:`.shards`), one small teacher per task (:mod:`.net`, :mod:`.objectives`, :mod:`.train`), and the
shipped weights with the default probe set (:mod:`.zoo`). A torch Dataset over it is :mod:`.dataset`.
"""
