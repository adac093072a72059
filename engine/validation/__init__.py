"""MAP 2: per-partition validation against GX suites, profiles, verdicts and alerts."""
