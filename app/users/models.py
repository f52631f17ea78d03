from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The project's user (AUTH_USER_MODEL), as Django advises for every new project: the
    same fields as Django's own for now, but yours to extend later with a migration,
    where switching from django.contrib.auth's User to a custom model is a painful one.

    An app of its own, not part of the kit: a project that adopts the kit keeps its user
    model (accounts' tokens point at whichever AUTH_USER_MODEL is set).
    """
