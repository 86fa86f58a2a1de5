"""The JSON renderer of every API view (REST_FRAMEWORK's DEFAULT_RENDERER_CLASSES)."""

from rest_framework import renderers

from .inputs import scrub_json


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer (UTF-8, not \\u-escaped), except that an answer holding a lone
    surrogate is written with U+FFFD in its place instead of failing to encode (a 500, or a
    dropped answer): input checks keep them out of new data, but a row stored before those
    checks, or an error message quoting unchecked input, may still carry one."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return super().render(scrub_json(data), accepted_media_type, renderer_context)
