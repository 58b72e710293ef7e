"""Route training: fine-tune the sentence encoder on labeled routes, export it to ONNX, switch routing to it.

Only ``vy-nexus routes train`` imports this package's torch modules (``finetune``, ``export``): routing itself runs
on onnxruntime + tokenizers. ``pipeline.train_routes`` is the entry point; see docs/routing.md, "Training the
encoder". torch, transformers and onnx come with the ``train`` extra: ``pip install 'vy-nexus[train]'``.
"""
