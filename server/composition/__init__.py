"""The composition root: builds every object a running server (or worker) is made of."""
