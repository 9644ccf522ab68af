#!/usr/bin/env python3
"""export_torch_models.py - third-party models as a user has them: torchvision, timm and
Hugging Face transformers architectures (random init, eval mode) exported with
torch.onnx.export, the TorchScript exporter and/or the dynamo one (torch >= 2.9's default).
Runs where torch is (the lent GPU machine; this machine has no PyPI, so no torch).

  python3 scripts/export_torch_models.py --out DIR [--models a,b] [--exporters ts,dynamo]
                                         [--skeleton] [--bf16] [--batch N] [--seq S]
writes DIR/<model>_<exporter>.onnx (and _bf16 with --bf16: the .bfloat16() module) and
DIR/<model>.inputs ("name shape dtype" lines). --skeleton drops the float initializers of more
than 256 elements (their mean, std, min and max go into the tensor's doc_string as
"mixrt-fill ...") so that the graphs travel in a few MiB; scripts/zoo/fill_skeleton.py
draws them again (clipped normal with the same moments) on the other side. Weights are
random here anyway: what a skeleton keeps is everything a compiler sees - ops, attributes,
shapes, exporter patterns, integer constants."""
import argparse
import os
import sys
import time
import traceback

VISION = {
    # torchvision
    "tv_resnet50": ("torchvision", "resnet50"),
    "tv_mobilenet_v2": ("torchvision", "mobilenet_v2"),
    "tv_mobilenet_v3_large": ("torchvision", "mobilenet_v3_large"),
    "tv_efficientnet_b0": ("torchvision", "efficientnet_b0"),
    "tv_convnext_tiny": ("torchvision", "convnext_tiny"),
    "tv_vit_b_16": ("torchvision", "vit_b_16"),
    "tv_swin_t": ("torchvision", "swin_t"),
    "tv_densenet121": ("torchvision", "densenet121"),
    "tv_squeezenet1_1": ("torchvision", "squeezenet1_1"),
    "tv_shufflenet_v2_x1_0": ("torchvision", "shufflenet_v2_x1_0"),
    "tv_regnet_y_400mf": ("torchvision", "regnet_y_400mf"),
    "tv_googlenet": ("torchvision", "googlenet"),
    "tv_mnasnet1_0": ("torchvision", "mnasnet1_0"),
    "tv_resnext50_32x4d": ("torchvision", "resnext50_32x4d"),
    # timm
    # more families: segmentation heads (bilinear Resize, dilated convs, dict outputs), 3-D
    # convs, VGG / AlexNet (big Gemm heads), the small MobileNetV3, EfficientNetV2, MaxViT
    "tv_deeplabv3_mobilenet_v3_large": ("torchvision.segmentation", "deeplabv3_mobilenet_v3_large"),
    "tv_fcn_resnet50": ("torchvision.segmentation", "fcn_resnet50"),
    "tv_lraspp_mobilenet_v3_large": ("torchvision.segmentation", "lraspp_mobilenet_v3_large"),
    "tv_r3d_18": ("torchvision.video", "r3d_18"),
    "tv_vgg16": ("torchvision", "vgg16"),
    "tv_alexnet": ("torchvision", "alexnet"),
    "tv_mobilenet_v3_small": ("torchvision", "mobilenet_v3_small"),
    "tv_efficientnet_v2_s": ("torchvision", "efficientnet_v2_s"),
    "tv_maxvit_t": ("torchvision", "maxvit_t"),
    "tv_wide_resnet50_2": ("torchvision", "wide_resnet50_2"),
    "tv_inception_v3": ("torchvision", "inception_v3"),
    "tv_swin_v2_t": ("torchvision", "swin_v2_t"),
    "tv_efficientnet_b3": ("torchvision", "efficientnet_b3"),
    # session 32: more families - (2+1)-D and mixed 3-D convs, 3-D attention (pooling attention,
    # shifted 3-D windows), smaller classification nets
    "tv_mc3_18": ("torchvision.video", "mc3_18"),
    "tv_r2plus1d_18": ("torchvision.video", "r2plus1d_18"),
    "tv_s3d": ("torchvision.video", "s3d"),
    "tv_mvit_v2_s": ("torchvision.video", "mvit_v2_s"),
    "tv_swin3d_t": ("torchvision.video", "swin3d_t"),
    "tv_regnet_x_400mf": ("torchvision", "regnet_x_400mf"),
    "tv_shufflenet_v2_x0_5": ("torchvision", "shufflenet_v2_x0_5"),
    "tv_vit_b_32": ("torchvision", "vit_b_32"),
    "tv_deeplabv3_resnet50": ("torchvision.segmentation", "deeplabv3_resnet50"),
    "timm_deit_small": ("timm", "deit_small_patch16_224"),
    "timm_resnet18": ("timm", "resnet18"),
}
# torchvision detection (a list of images in, per-image dicts out; boxes, scores and labels of
# the first image exported): NMS, RoiAlign, TopK and data-dependent shapes
DETECTION = {
    "tv_ssdlite": "ssdlite320_mobilenet_v3_large",
    "tv_fasterrcnn_mobilenet": "fasterrcnn_mobilenet_v3_large_320_fpn",
    "tv_retinanet": "retinanet_resnet50_fpn",
    "tv_fcos": "fcos_resnet50_fpn",
    "tv_maskrcnn": "maskrcnn_resnet50_fpn",
    "tv_keypointrcnn": "keypointrcnn_resnet50_fpn",
    "tv_ssd300": "ssd300_vgg16",
    "tv_fasterrcnn_v2": "fasterrcnn_resnet50_fpn_v2",
}
# what a detector returns beyond boxes, scores and labels (masks: [n, 1, h, w] probabilities)
DETECTION_EXTRA = {"tv_maskrcnn": ["masks"], "tv_keypointrcnn": ["keypoints", "keypoints_scores"]}
TEXT = ["hf_bert", "hf_gpt2", "hf_distilbert", "hf_roberta", "hf_llama_tiny", "hf_t5_encoder",
        "hf_vit", "hf_resnet50", "hf_albert", "hf_electra", "hf_deberta_v2", "hf_bart", "hf_mistral_tiny",
        "hf_qwen2_tiny", "hf_phi_tiny", "hf_opt", "hf_bloom_tiny", "hf_gpt_neo_tiny", "hf_mobilebert",
        "hf_wav2vec2", "hf_whisper_encoder", "hf_clip_vision", "hf_swin", "hf_segformer", "hf_dinov2",
        "hf_convnext", "hf_gpt2_past", "hf_beit", "hf_levit", "hf_mobilevit", "hf_yolos", "hf_detr",
        "hf_t5", "hf_whisper", "hf_gpt_bigcode_tiny", "hf_gemma_tiny", "hf_falcon_tiny", "hf_squeezebert",
        "hf_xlm_roberta", "tv_raft_small",
        # session 32: more families
        "hf_deit", "hf_convnextv2", "hf_regnet", "hf_poolformer", "hf_cvt", "hf_pvt", "hf_dpt", "hf_glpn",
        "hf_siglip_vision", "hf_data2vec_vision", "hf_focalnet", "hf_swinv2", "hf_bit", "hf_efficientnet",
        "hf_mobilenet_v2", "hf_mpnet", "hf_funnel", "hf_xlnet", "hf_roformer", "hf_gptj_tiny", "hf_codegen_tiny",
        "hf_stablelm_tiny", "hf_mixtral_tiny", "hf_nystromformer", "hf_canine", "hf_layoutlm", "hf_ernie",
        "hf_olmo_tiny", "hf_starcoder2_tiny", "hf_granite_tiny", "hf_cohere_tiny", "hf_phi3_tiny",
        "hf_gpt_neox_tiny", "hf_pegasus", "hf_marian", "hf_blenderbot_small", "hf_hubert", "hf_wavlm",
        "hf_data2vec_audio", "hf_sew"]

# session 32's families: (module class, config class, config keywords, input kind); kinds as
# text_model returns them (False: pixel_values, True: input_ids and attention_mask).
SMALL_LM = dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=4, num_attention_heads=8,
                vocab_size=8000, max_position_embeddings=512)
MORE = {
    "hf_deit": ("DeiTForImageClassificationWithTeacher", "DeiTConfig", {}, False),
    "hf_convnextv2": ("ConvNextV2ForImageClassification", "ConvNextV2Config", {}, False),
    "hf_regnet": ("RegNetForImageClassification", "RegNetConfig", {}, False),
    "hf_poolformer": ("PoolFormerForImageClassification", "PoolFormerConfig", {}, False),
    "hf_cvt": ("CvtForImageClassification", "CvtConfig", {}, False),
    "hf_pvt": ("PvtForImageClassification", "PvtConfig", {}, False),
    "hf_dpt": ("DPTForDepthEstimation", "DPTConfig", {"image_size": 224}, False),
    "hf_glpn": ("GLPNForDepthEstimation", "GLPNConfig", {}, False),
    "hf_siglip_vision": ("SiglipVisionModel", "SiglipVisionConfig", {}, False),
    "hf_data2vec_vision": ("Data2VecVisionForImageClassification", "Data2VecVisionConfig", {}, False),
    "hf_focalnet": ("FocalNetForImageClassification", "FocalNetConfig", {}, False),
    "hf_swinv2": ("Swinv2ForImageClassification", "Swinv2Config", {}, False),
    "hf_bit": ("BitForImageClassification", "BitConfig", {}, False),
    "hf_efficientnet": ("EfficientNetForImageClassification", "EfficientNetConfig", {"image_size": 224}, False),
    "hf_mobilenet_v2": ("MobileNetV2ForImageClassification", "MobileNetV2Config", {}, False),
    "hf_mpnet": ("MPNetModel", "MPNetConfig", {}, True),
    "hf_funnel": ("FunnelModel", "FunnelConfig", {}, True),
    "hf_xlnet": ("XLNetModel", "XLNetConfig", {"n_layer": 4}, True),
    "hf_roformer": ("RoFormerModel", "RoFormerConfig", {}, True),
    "hf_gptj_tiny": ("GPTJForCausalLM", "GPTJConfig",
                     dict(n_embd=512, n_layer=4, n_head=8, rotary_dim=32, vocab_size=8000, n_positions=512), True),
    "hf_codegen_tiny": ("CodeGenForCausalLM", "CodeGenConfig",
                        dict(n_embd=512, n_layer=4, n_head=8, rotary_dim=32, vocab_size=8000, n_positions=512), True),
    "hf_stablelm_tiny": ("StableLmForCausalLM", "StableLmConfig", dict(SMALL_LM), True),
    "hf_mixtral_tiny": ("MixtralForCausalLM", "MixtralConfig",
                        dict(SMALL_LM, num_key_value_heads=4, num_local_experts=4, num_experts_per_tok=2), True),
    "hf_nystromformer": ("NystromformerModel", "NystromformerConfig", {"num_hidden_layers": 4}, True),
    "hf_canine": ("CanineModel", "CanineConfig", {}, True),
    "hf_layoutlm": ("LayoutLMModel", "LayoutLMConfig", {}, True),
    "hf_ernie": ("ErnieModel", "ErnieConfig", {}, True),
    "hf_olmo_tiny": ("OlmoForCausalLM", "OlmoConfig", dict(SMALL_LM), True),
    "hf_starcoder2_tiny": ("Starcoder2ForCausalLM", "Starcoder2Config", dict(SMALL_LM, num_key_value_heads=2), True),
    "hf_granite_tiny": ("GraniteForCausalLM", "GraniteConfig", dict(SMALL_LM, num_key_value_heads=4), True),
    "hf_cohere_tiny": ("CohereForCausalLM", "CohereConfig", dict(SMALL_LM, num_key_value_heads=4), True),
    "hf_phi3_tiny": ("Phi3ForCausalLM", "Phi3Config", dict(SMALL_LM, num_key_value_heads=4, pad_token_id=0), True),
    "hf_gpt_neox_tiny": ("GPTNeoXForCausalLM", "GPTNeoXConfig", dict(SMALL_LM), True),
    "hf_pegasus": ("PegasusForConditionalGeneration", "PegasusConfig",
                   dict(d_model=512, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=1024, decoder_ffn_dim=1024,
                        encoder_attention_heads=8, decoder_attention_heads=8, vocab_size=8000), "seq2seq"),
    "hf_marian": ("MarianMTModel", "MarianConfig", dict(encoder_layers=2, decoder_layers=2, vocab_size=8000,
                                                         decoder_vocab_size=8000, pad_token_id=0), "seq2seq"),
    "hf_blenderbot_small": ("BlenderbotSmallForConditionalGeneration", "BlenderbotSmallConfig",
                            dict(encoder_layers=2, decoder_layers=2, vocab_size=8000), "seq2seq"),
    "hf_hubert": ("HubertModel", "HubertConfig", {"num_hidden_layers": 4}, "audio"),
    "hf_wavlm": ("WavLMModel", "WavLMConfig", {"num_hidden_layers": 4}, "audio"),
    "hf_data2vec_audio": ("Data2VecAudioModel", "Data2VecAudioConfig", {"num_hidden_layers": 4}, "audio"),
    "hf_sew": ("SEWModel", "SEWConfig", {"num_hidden_layers": 4}, "audio"),
}



def text_model(name):
    import transformers as tf
    if name == "hf_bert":
        return tf.BertModel(tf.BertConfig()), True
    if name == "hf_gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config()), True
    if name == "hf_gpt2_past":  # one decoding step after seq - 1 cached tokens
        return tf.GPT2LMHeadModel(tf.GPT2Config()), "past"
    if name == "hf_distilbert":
        return tf.DistilBertModel(tf.DistilBertConfig()), True
    if name == "hf_roberta":
        return tf.RobertaModel(tf.RobertaConfig()), True
    if name == "hf_llama_tiny":
        c = tf.LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=4,
                           num_attention_heads=8, num_key_value_heads=4, vocab_size=8000,
                           max_position_embeddings=512)
        return tf.LlamaForCausalLM(c), True
    if name == "hf_t5_encoder":
        return tf.T5EncoderModel(tf.T5Config()), True
    if name == "hf_vit":
        return tf.ViTForImageClassification(tf.ViTConfig()), False
    if name == "hf_resnet50":  # the ResNet-50 scripts/cuda_vs_torch.py times torch.compile on
        return tf.ResNetForImageClassification(tf.ResNetConfig()), False
    if name == "hf_albert":
        return tf.AlbertModel(tf.AlbertConfig()), True
    if name == "hf_electra":
        return tf.ElectraModel(tf.ElectraConfig()), True
    if name == "hf_deberta_v2":
        return tf.DebertaV2Model(tf.DebertaV2Config(num_hidden_layers=4)), True
    if name == "hf_bart":
        return tf.BartModel(tf.BartConfig(encoder_layers=3, decoder_layers=3)), True
    if name == "hf_mobilebert":
        return tf.MobileBertModel(tf.MobileBertConfig()), True
    if name == "hf_opt":
        return tf.OPTForCausalLM(tf.OPTConfig()), True
    small = dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=4, num_attention_heads=8,
                 vocab_size=8000, max_position_embeddings=512)
    if name == "hf_mistral_tiny":
        return tf.MistralForCausalLM(tf.MistralConfig(num_key_value_heads=4, **small)), True
    if name == "hf_qwen2_tiny":
        return tf.Qwen2ForCausalLM(tf.Qwen2Config(num_key_value_heads=4, **small)), True
    if name == "hf_phi_tiny":
        return tf.PhiForCausalLM(tf.PhiConfig(**small)), True
    if name == "hf_bloom_tiny":
        return tf.BloomForCausalLM(tf.BloomConfig(hidden_size=512, n_layer=4, n_head=8, vocab_size=8000)), True
    if name == "hf_gpt_neo_tiny":
        return tf.GPTNeoForCausalLM(tf.GPTNeoConfig(hidden_size=512, num_layers=4, num_heads=8, vocab_size=8000,
                                                    attention_types=[[["global", "local"], 2]])), True
    if name == "hf_wav2vec2":
        return tf.Wav2Vec2Model(tf.Wav2Vec2Config(num_hidden_layers=4)), "audio"
    if name == "hf_whisper_encoder":
        return tf.WhisperModel(tf.WhisperConfig()).get_encoder(), "mel"
    if name == "hf_clip_vision":
        return tf.CLIPVisionModel(tf.CLIPVisionConfig()), False
    if name == "hf_swin":
        return tf.SwinModel(tf.SwinConfig()), False
    if name == "hf_segformer":
        return tf.SegformerForSemanticSegmentation(tf.SegformerConfig()), False
    if name == "hf_dinov2":
        return tf.Dinov2Model(tf.Dinov2Config()), False
    if name == "hf_convnext":
        return tf.ConvNextForImageClassification(tf.ConvNextConfig()), False
    # relative position bias tables (BEiT), attention biases and stride-2 attention (LeViT),
    # unfolded patches between convolutions (MobileViT), detection tokens with interpolated
    # position embeddings (YOLOS), a ResNet backbone with a DETR decoder of object queries
    if name == "hf_beit":
        return tf.BeitModel(tf.BeitConfig(use_relative_position_bias=True)), False
    if name == "hf_levit":
        return tf.LevitForImageClassification(tf.LevitConfig()), False
    if name == "hf_mobilevit":
        return tf.MobileViTForImageClassification(tf.MobileViTConfig()), False
    if name == "hf_yolos":
        return tf.YolosForObjectDetection(tf.YolosConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                                                         intermediate_size=768)), False
    if name == "hf_detr":
        return tf.DetrForObjectDetection(tf.DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False,
                                                       backbone=None)), False
    # encoder-decoder models on their whole forward (decoder_input_ids of seq / 4 tokens)
    if name == "hf_t5":
        return tf.T5ForConditionalGeneration(tf.T5Config()), "seq2seq"
    if name == "hf_whisper":
        return tf.WhisperForConditionalGeneration(tf.WhisperConfig()), "whisper"
    if name == "hf_gpt_bigcode_tiny":  # multi-query attention
        return tf.GPTBigCodeForCausalLM(tf.GPTBigCodeConfig(n_embd=512, n_layer=4, n_head=8, vocab_size=8000)), True
    if name == "hf_gemma_tiny":
        return tf.GemmaForCausalLM(tf.GemmaConfig(num_key_value_heads=1, head_dim=64, **small)), True
    if name == "hf_falcon_tiny":
        return tf.FalconForCausalLM(tf.FalconConfig(hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                                                    vocab_size=8000)), True
    if name == "hf_squeezebert":  # grouped 1-D convolutions for the projections
        return tf.SqueezeBertModel(tf.SqueezeBertConfig()), True
    if name == "hf_xlm_roberta":  # a 250002-row embedding table
        return tf.XLMRobertaModel(tf.XLMRobertaConfig(vocab_size=250002)), True
    if name in MORE:
        cls, cfg, kw, kind = MORE[name]
        return getattr(tf, cls)(getattr(tf, cfg)(**kw)), kind
    raise KeyError(name)


def wrap(m, keys):
    """m as a module whose forward takes exactly the exported inputs, positionally, and returns
    the first output (torch is imported here: the script's --help runs without it)."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, *a):
            o = self.m(*a) if keys is None else self.m(**dict(zip(keys, a)))
            if isinstance(o, (tuple, list)):
                return o[0]
            if isinstance(o, dict) and "out" in o:  # torchvision segmentation: {"out", "aux"}
                return o["out"]
            if getattr(o, "predicted_depth", None) is not None:  # DPT, GLPN
                return o.predicted_depth
            return o.logits if hasattr(o, "logits") and o.logits is not None else o.last_hidden_state
    return Wrapped()


def detection(arch, batch, extra=()):
    import torch
    import torchvision.models.detection as tvd
    kw = dict(weights=None, weights_backbone=None)
    if not arch.endswith("_320_fpn") and not arch.startswith("ssd"):
        kw.update(min_size=320, max_size=320)
    m = getattr(tvd, arch)(**kw).eval()

    class Det(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, x):
            o = self.m(list(x))[0]
            return tuple(o[k] for k in ["boxes", "scores", "labels"] + list(extra))
    return Det().eval(), [("x", torch.rand(batch, 3, 320, 320))]


def gpt2_past(m, seq, batch):
    """GPT-2 taking its key / value cache as inputs (past_k{i}, past_v{i}: [b, heads, seq - 1,
    64]) and one new token: the decoding step of a generation loop."""
    import torch
    import transformers as tf
    c = m.config
    c.use_cache = True
    L, H, D = c.n_layer, c.n_head, c.n_embd // c.n_head

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, ids, mask, *kv):
            cache = tf.DynamicCache()
            for i in range(L):
                cache.update(kv[2 * i], kv[2 * i + 1], i)
            return self.m(input_ids=ids, attention_mask=mask, past_key_values=cache).logits
    ins = [("input_ids", torch.randint(0, 1000, (batch, 1))),
           ("attention_mask", torch.ones(batch, seq, dtype=torch.long))]
    for i in range(L):
        ins += [("past_k%d" % i, torch.randn(batch, H, seq - 1, D)), ("past_v%d" % i, torch.randn(batch, H, seq - 1, D))]
    return Step().eval(), ins


def make(name, seq, eager=False, batch=1):
    import torch
    torch.manual_seed(0)
    if name in DETECTION:
        return detection(DETECTION[name], batch, DETECTION_EXTRA.get(name, ()))
    if name == "tv_raft_small":  # optical flow: grid_sample, a correlation pyramid, 12 GRU iterations
        import torchvision.models.optical_flow as tvo

        class Flow(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = tvo.raft_small(weights=None)

            def forward(self, a, b):
                return self.m(a, b, num_flow_updates=12)[-1]
        return Flow().eval(), [("img1", torch.randn(batch, 3, 224, 224)), ("img2", torch.randn(batch, 3, 224, 224))]
    if name in VISION:
        lib, arch = VISION[name]
        if lib.startswith("torchvision"):
            import torchvision.models as tvm
            mod = tvm
            for part in lib.split(".")[1:]:
                mod = getattr(mod, part)
            kw = {}
            if lib.endswith("segmentation"):  # no pretrained backbone either (no network there)
                kw = {"weights_backbone": None} if "lraspp" in arch else {"weights_backbone": None, "aux_loss": False}
            m = getattr(mod, arch)(weights=None, **kw)
            if lib.endswith("segmentation"):
                m = wrap(m, None)
        else:
            import timm
            m = timm.create_model(arch, pretrained=False)
        shape = (batch, 3, 16, 112, 112) if lib.endswith("video") else (batch, 3, 224, 224)
        if arch in ("s3d", "mvit_v2_s", "swin3d_t"):  # global pools and position tables of 224 x 224 clips
            shape = (batch, 3, 16, 224, 224)
        return m.eval(), [("x", torch.randn(*shape))]
    m, text = text_model(name)
    m = m.eval()
    if getattr(m.config, "use_cache", None):
        m.config.use_cache = False
    if eager:
        m.config._attn_implementation = "eager"
    if text == "past":
        return gpt2_past(m, seq, batch)
    if text == "audio":
        return wrap(m, ["input_values"]).eval(), [("input_values", torch.randn(batch, 16000))]
    if text == "mel":
        return wrap(m, ["input_features"]).eval(), [("input_features", torch.randn(batch, 80, 3000))]
    if text == "whisper":
        return wrap(m, ["input_features", "decoder_input_ids"]).eval(), [
            ("input_features", torch.randn(batch, 80, 3000)), ("decoder_input_ids", torch.randint(0, 1000, (batch, seq // 4)))]
    if text == "seq2seq":
        return wrap(m, ["input_ids", "attention_mask", "decoder_input_ids"]).eval(), [
            ("input_ids", torch.randint(0, 1000, (batch, seq))), ("attention_mask", torch.ones(batch, seq, dtype=torch.long)),
            ("decoder_input_ids", torch.randint(0, 1000, (batch, seq // 4)))]
    if not text:
        return wrap(m, ["pixel_values"]).eval(), [("pixel_values", torch.randn(batch, 3, 224, 224))]
    ids = torch.randint(0, 1000, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)
    return wrap(m, ["input_ids", "attention_mask"]).eval(), [("input_ids", ids), ("attention_mask", mask)]


def skeleton(path, min_elems=256):
    import numpy as np
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)

    def strip(t):
        n = 1
        for d in t.dims:
            n *= d
        if t.data_type not in floats or n <= min_elems or t.data_location == onnx.TensorProto.EXTERNAL:
            return
        a = numpy_helper.to_array(t).astype(np.float64)
        t.doc_string = "mixrt-fill %.9g %.9g %.9g %.9g" % (a.mean(), a.std(), a.min(), a.max())
        t.ClearField("raw_data")
        for f in ("float_data", "int32_data", "double_data"):
            t.ClearField(f)

    def graph(g):
        for t in g.initializer:
            strip(t)
        for n in g.node:
            for at in n.attribute:
                if at.type == onnx.AttributeProto.TENSOR:
                    strip(at.t)
                elif at.type == onnx.AttributeProto.GRAPH:
                    graph(at.g)
                elif at.type == onnx.AttributeProto.GRAPHS:
                    for sg in at.graphs:
                        graph(sg)
    graph(m.graph)
    for f in m.functions:
        for n in f.node:
            for at in n.attribute:
                if at.type == onnx.AttributeProto.TENSOR:
                    strip(at.t)
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default=",".join(list(VISION) + list(DETECTION) + TEXT))
    ap.add_argument("--exporters", default="ts,dynamo")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--skeleton", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--dynamic", action="store_true", help="a symbolic batch (dim 0 of every input and of y)")
    a = ap.parse_args()
    import torch
    os.makedirs(a.out, exist_ok=True)
    print("torch", torch.__version__, flush=True)
    for name in a.models.split(","):
        eager = name.endswith("_eager")
        try:
            m, ins = make(name[:-6] if eager else name, a.seq, eager, a.batch)
        except Exception as e:
            print(f"{name}: cannot build: {e}", flush=True)
            continue
        with open(os.path.join(a.out, name + ".inputs"), "w") as f:
            for k, v in ins:
                f.write("%s %s %s\n" % (k, "x".join(map(str, v.shape)), str(v.dtype).replace("torch.", "")))
        for dt in ["f32"] + (["bf16"] if a.bf16 else []):
            mm = m if dt == "f32" else m.bfloat16()
            args = tuple(v if v.dtype != torch.float32 or dt == "f32" else v.bfloat16() for _, v in ins)
            for ex in a.exporters.split(","):
                path = os.path.join(a.out, "%s_%s%s.onnx" % (name, ex, "" if dt == "f32" else "_bf16"))
                t0 = time.time()
                try:
                    outs = ["boxes", "scores", "labels"] + DETECTION_EXTRA.get(name, []) if name in DETECTION else ["y"]
                    kw = dict(input_names=[k for k, _ in ins], output_names=outs)
                    if a.dynamic:
                        kw["dynamic_axes"] = {k: {0: "batch"} for k in [k for k, _ in ins] + outs}
                    with torch.no_grad():
                        if ex == "ts":
                            torch.onnx.export(mm, args, path, dynamo=False, opset_version=17,
                                              do_constant_folding=True, **kw)
                        else:
                            torch.onnx.export(mm, args, path, dynamo=True, external_data=False, **kw)
                    if a.skeleton:
                        skeleton(path)
                    print(f"{name} {ex} {dt}: ok {time.time() - t0:.1f} s, {os.path.getsize(path) / 1e6:.2f} MB",
                          flush=True)
                except Exception as e:
                    print(f"{name} {ex} {dt}: export failed: {str(e).splitlines()[0][:300]}", flush=True)
                    traceback.print_exc(limit=2, file=sys.stdout)
                    if os.path.exists(path):
                        os.remove(path)


if __name__ == "__main__":
    main()
