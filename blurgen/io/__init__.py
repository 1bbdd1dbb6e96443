"""File formats at the edge of the pipeline: flows and images in, flows and pictures out."""
