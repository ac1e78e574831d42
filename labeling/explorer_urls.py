"""The data explorer, mounted at /explore/ (labeling/views/explorer.py): batch admins and researchers."""

from django.urls import path

from .views import explorer

app_name = "explore"

urlpatterns = [
    path("rankings/", explorer.rankings, name="rankings"),
    path("demonstrations/", explorer.demonstrations, name="demonstrations"),
    path("prompts/", explorer.prompts, name="prompts"),
    path("prompts/<int:pk>/", explorer.prompt, name="prompt"),
    path("tasks/<int:task_id>/", explorer.task, name="task"),
]
