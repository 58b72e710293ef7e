"""The experts vy-nexus registers by default."""

from __future__ import annotations

from vy_nexus.experts.base import BaseExpert
from vy_nexus.experts.builtin.code import CodeExpert
from vy_nexus.experts.builtin.data_analysis import DataAnalysisExpert
from vy_nexus.experts.builtin.general import GeneralExpert
from vy_nexus.experts.builtin.research import ResearchExpert
from vy_nexus.experts.builtin.writing import WritingExpert

BUILTIN_EXPERTS: tuple[type[BaseExpert], ...] = (
    CodeExpert,
    ResearchExpert,
    WritingExpert,
    DataAnalysisExpert,
    GeneralExpert,
)

__all__ = ["BUILTIN_EXPERTS"]
