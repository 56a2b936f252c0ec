from rest_framework.pagination import CursorPagination


class Cursor(CursorPagination):
    """Stable under inserts: newest first by id; ?page_size= up to MAX. A bad cursor is a 404."""
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
