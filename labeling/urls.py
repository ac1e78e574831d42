from django.urls import path

from .views import history, home, undo, workspace

urlpatterns = [
    path("", home.home, name="home"),
    path("batches/<int:batch_id>/start/", workspace.start, name="workspace-start"),
    path("assignments/<int:pk>/", workspace.assignment, name="workspace-assignment"),
    path("assignments/<int:pk>/skip/", workspace.skip, name="workspace-skip"),
    path("assignments/<int:pk>/draft/", workspace.draft, name="workspace-draft"),
    path("prompts/<int:pk>/", workspace.prompt_detail, name="workspace-prompt"),
    path("assignments/<int:pk>/undo/", undo.undo, name="workspace-undo"),
    path("submissions/", history.history, name="workspace-history"),
    path("submissions/<int:pk>/", history.submission, name="workspace-submission"),
]
