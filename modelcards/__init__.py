"""Model cards: what a model is for and how it was trained and evaluated, approved by the team."""
