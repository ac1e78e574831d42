"""Request bodies. JSON is read as the imports read it (core.storable.loads): a body nested past
Python's recursion limit, NaN, or a number beyond a double (1e999 would be Infinity, which jsonb refuses)
is a 400 naming the problem, not a 500. It is the first of REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]."""

import codecs

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from .. import storable


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        # djangorestframework-stubs 3.18.1 lacks get_encoding (rest_framework/parsers.py has it).
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        try:
            return storable.loads(codecs.getreader(encoding)(stream).read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
