"""The reproductions: experiments built from tasks, models and the training loop."""
