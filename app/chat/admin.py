from django.contrib import admin

from .models import ChatMessage


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "room", "username", "message", "created")
    list_filter = ("room",)
    search_fields = ("room", "username", "message")
