"""``/posts/`` and ``/posts/<post_id>/``."""

from django.urls import path

from blog_site import views

urlpatterns = [
    path("posts/", views.post_list),
    path("posts/<str:post_id>/", views.post_detail),
]
