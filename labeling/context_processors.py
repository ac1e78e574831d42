from core.roles import is_batch_admin, is_labeler, is_researcher


def roles(request):
    user = request.user
    return {
        "is_labeler": is_labeler(user),
        "is_batch_admin": is_batch_admin(user),
        "is_researcher": is_researcher(user),
    }
