from dropp.core.errors import BadRequest, DroppError


class InvalidEventId(BadRequest):
    code = "invalid_event_id"


class TooManyStreams(DroppError):
    status, code = 429, "too_many_streams"
