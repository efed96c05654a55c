from dropp.core.errors import BadRequest, Conflict, NotFound


class FileNotFound(NotFound):
    code = "file_not_found"


class FolderNotFound(NotFound):
    code = "folder_not_found"


class NameTaken(Conflict):
    code = "name_taken"


class NotAFolder(Conflict):
    code = "not_a_folder"


class FileNotReady(Conflict):
    code = "file_not_ready"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


class MoveIntoItself(Conflict):
    code = "move_into_itself"


class StaleBaseRevision(Conflict):
    """The client's `base_revision` is no longer the file's current one."""

    code = "conflict"


class NotInTrash(NotFound):
    code = "not_in_trash"
