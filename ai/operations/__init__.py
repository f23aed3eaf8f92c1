"""The product's AI operations, one module each: what is estimated, what a worker runs, and
what lands in the live document."""
