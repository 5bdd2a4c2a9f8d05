<?php
function handler($event)
{
    return null;
}
