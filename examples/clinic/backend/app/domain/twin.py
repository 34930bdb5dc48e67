"""The digital twin: a patient's recent vitals and what they suggest."""
from dataclasses import dataclass, field
from statistics import mean
from typing import List


@dataclass
class Vitals:
    heart_rate: int
    systolic: int
    diastolic: int
    temperature_c: float


@dataclass
class DigitalTwin:
    mrn: str
    readings: List[Vitals] = field(default_factory=list)

    def record(self, vitals: Vitals) -> None:
        if not 20 <= vitals.heart_rate <= 250:
            raise ValueError("heart rate out of range")
        self.readings.append(vitals)

    def risk_score(self) -> int:
        """0 (no concern) to 6, from the mean of the last five readings."""
        if not self.readings:
            return 0
        recent = self.readings[-5:]
        score = 0
        hr = mean(v.heart_rate for v in recent)
        sys_bp = mean(v.systolic for v in recent)
        temp = mean(v.temperature_c for v in recent)
        score += 2 if hr > 120 else 1 if hr > 100 else 0
        score += 2 if sys_bp >= 160 else 1 if sys_bp >= 140 else 0
        score += 2 if temp >= 39.0 else 1 if temp >= 38.0 else 0
        return score
