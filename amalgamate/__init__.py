"""amalgamate: training one multi-talent student from a zoo of teachers (SOKA-Net, Luo et al., ECCV 2020).

Built in its own issue; the package exists now so that packaging and imports are settled early.
"""
