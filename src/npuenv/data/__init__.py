"""Files npuenv ships beside its code (README.md says where each comes from)."""

from pathlib import Path

TEST_VIDEO = Path(__file__).resolve().with_name("test-video.mp4")  # decord's check and the smoke test decode it
