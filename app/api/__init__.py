"""HTTP layer: one router per resource. Nothing here touches torch directly."""
