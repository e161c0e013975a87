"""Explanations: occlusion saliency maps, landmark regions and their table, heatmap rendering, the glue to a result."""
