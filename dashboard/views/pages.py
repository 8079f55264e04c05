"""Top-level pages. Each reads through integrations.selectors and changes nothing."""

from __future__ import annotations

from django.views.generic import TemplateView

from accounts.permissions import ViewerRequiredMixin


class HomeView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/home.html"


class StubPage(ViewerRequiredMixin, TemplateView):
    """A page whose content arrives with a later issue; it renders and says what will be there."""

    template_name = "dashboard/stub.html"
    title = ""
    summary = ""

    def get_context_data(self, **kwargs):  # type: ignore[no-untyped-def]
        ctx = super().get_context_data(**kwargs)
        ctx.update(title=self.title, summary=self.summary)
        return ctx
