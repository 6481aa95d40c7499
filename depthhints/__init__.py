"""Self-supervised monocular depth with Depth Hints (Watson et al., ICCV 2019) on Ray and MLflow."""

__version__ = "0.1.0"
