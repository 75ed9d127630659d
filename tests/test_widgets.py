"""The ipywidgets explorers, built headless."""

import torch
import torch.nn as nn

from modlearn import widgets


def _browser(num_images: int, num_wrong: int, per_page: int = 4):
    images = torch.rand(num_images, 1, 4, 4)
    labels = torch.zeros(num_images, dtype=torch.long)
    labels[:num_wrong] = 1
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():  # always predicts class 0: exactly the first num_wrong images are mistakes
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0]))
    browser = widgets.prediction_browser(model, images, labels, per_page=per_page)
    slider, toggle = browser.children[:2]
    return slider, toggle


def test_prediction_browser_pages_are_never_empty():
    slider, toggle = _browser(num_images=8, num_wrong=5, per_page=4)
    assert (slider.min, slider.max) == (0, 1)  # 8 images: pages 0 and 1
    toggle.value = True
    assert slider.max == 1  # 5 mistakes: pages 0 and 1
    slider, toggle = _browser(num_images=9, num_wrong=3, per_page=4)
    assert slider.max == 2
    toggle.value = True
    assert slider.max == 0 and slider.value == 0
    slider, _ = _browser(num_images=3, num_wrong=0, per_page=4)
    assert slider.max == 0
